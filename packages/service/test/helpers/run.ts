/** Runs short-lived commands (the service's CLI, a README line) to their end, collecting their output. */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";

/** `conduit-service` from source, run with `node --import tsx`. */
export const SERVICE_CLI = fileURLToPath(new URL("../../src/cli.ts", import.meta.url));

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `command` to its end; `stdin` is written and closed (empty when not given). */
export async function runToEnd(
  command: string,
  args: readonly string[],
  options: { env: NodeJS.ProcessEnv; cwd?: string; stdin?: string },
): Promise<Ran> {
  const child = spawn(command, args, { env: options.env, cwd: options.cwd, stdio: ["pipe", "pipe", "pipe"] });
  const ran: Ran = { code: null, stdout: "", stderr: "" };
  child.stdout.on("data", (d: Buffer) => {
    ran.stdout += d.toString();
  });
  child.stderr.on("data", (d: Buffer) => {
    ran.stderr += d.toString();
  });
  child.stdin.end(options.stdin ?? "");
  [ran.code] = (await once(child, "exit")) as [number | null];
  return ran;
}

/** `conduit-service ARGS…` to its end. */
export function runServiceCli(args: readonly string[], env: NodeJS.ProcessEnv, stdin?: string): Promise<Ran> {
  return runToEnd(process.execPath, ["--import", "tsx", SERVICE_CLI, ...args], { env, stdin });
}
