/**
 * `endpoint_setup` and `endpoint_teardown`: shell scripts run by `/bin/sh -c`
 * as a child of the UEP (so they cannot change the UEP's own environment, as
 * the seed warns). Their output goes to the UEP's log line by line.
 */
import { spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { UepStartError } from "../errors.js";
import type { Logger } from "../logging.js";

export type ShellHookName = "endpoint_setup" | "endpoint_teardown";

export interface ShellHookOptions {
  log: Logger;
  env: NodeJS.ProcessEnv;
  /** Aborting kills the script and its children (SIGTERM to its process group) and fails the hook. */
  signal?: AbortSignal;
}

/** Characters of stderr kept for the error message. */
const STDERR_TAIL = 500;
/** After the script exits, how long to wait for the rest of its output. */
const OUTPUT_WAIT_MS = 200;

/** Runs the script; resolves when it exits 0, else throws a UepStartError naming the exit code and the tail of stderr. */
export function runShellHook(name: ShellHookName, script: string, options: ShellHookOptions): Promise<void> {
  const { log } = options;
  log.info(`Running ${name}`);
  return new Promise((resolve, reject) => {
    // Its own process group, so that aborting stops the whole script, not only the shell.
    const child = spawn("/bin/sh", ["-c", script], {
      env: options.env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    const kill = (): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {
        // already gone
      }
    };
    options.signal?.addEventListener("abort", kill, { once: true });
    let stderrTail = "";
    const forward = (stream: NodeJS.ReadableStream, isStderr: boolean): Promise<void> => {
      let partial = "";
      stream.setEncoding("utf8");
      stream.on("data", (chunk: string) => {
        if (isStderr) stderrTail = (stderrTail + chunk).slice(-STDERR_TAIL * 2);
        const lines = (partial + chunk).split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) log.info(`[${name}] ${line}`);
      });
      return new Promise((done) =>
        stream.once("close", () => {
          if (partial) log.info(`[${name}] ${partial}`);
          done();
        }),
      );
    };
    const output = Promise.all([forward(child.stdout, false), forward(child.stderr, true)]);
    child.once("error", (err) => {
      options.signal?.removeEventListener("abort", kill);
      reject(
        new UepStartError(`${name} could not be run (${err.message}); check that /bin/sh exists.`, { cause: err }),
      );
    });
    child.once("exit", async (code, signal) => {
      options.signal?.removeEventListener("abort", kill);
      // A background process started by the script may hold the pipes open forever: wait for the output only briefly.
      await Promise.race([output, sleep(OUTPUT_WAIT_MS)]);
      child.stdout.destroy();
      child.stderr.destroy();
      if (code === 0) {
        log.info(`${name} finished`);
        resolve();
        return;
      }
      const how = code === null ? `was killed by signal ${signal}` : `exited with code ${code}`;
      const tail = stderrTail.trim().slice(-STDERR_TAIL);
      reject(
        new UepStartError(
          `${name} ${how}${tail ? ` (stderr: ${JSON.stringify(tail)})` : ""}; fix the ${name} script in the endpoint's user config template or in your user endpoint config.`,
        ),
      );
    });
  });
}
