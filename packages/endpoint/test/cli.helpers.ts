/**
 * Shared by the cli.* and manager.* tests: runs the built `conduit-endpoint`
 * (packages/endpoint/dist/cli/main.js, after `npx tsc -b packages/endpoint`)
 * as real child processes, tracks every process it starts so a failing test
 * still cleans up, and reads the `list` table.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll } from "vitest";
import { createVhost } from "../../../scripts/local-stack.mjs";

export const CLI = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface Mep {
  child: ChildProcess;
  endpointId: string;
  output: { stdout: string; stderr: string };
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const started = new Set<ChildProcess>();
const tempDirs: string[] = [];

export function tempUserDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "conduit-cli-"));
  tempDirs.push(dir);
  return dir;
}

/** Environment for a CLI child: its own user dir and service, nothing inherited from the developer's. */
export function cliEnv(userDir: string, service?: { url: string; token: string }): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, CONDUIT_USER_DIR: userDir };
  // A closed port: "the service is down" unless a test gives one.
  env.CONDUIT_SERVICE_URL = service?.url ?? "http://127.0.0.1:9";
  env.CONDUIT_TOKEN = service?.token ?? "no-service";
  return env;
}

function collect(child: ChildProcess): { stdout: string; stderr: string } {
  const out = { stdout: "", stderr: "" };
  child.stdout?.setEncoding("utf8").on("data", (d: string) => {
    out.stdout += d;
  });
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    out.stderr += d;
  });
  return out;
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode });
      return;
    }
    child.once("exit", (code, signal) => {
      started.delete(child);
      resolve({ code, signal });
    });
  });
}

/** Runs `conduit-endpoint ARGS` to completion (as another user with `as`, when root). */
export async function runCli(
  args: string[],
  env: NodeJS.ProcessEnv,
  as?: { uid: number; gid: number; cli: string },
): Promise<CliResult> {
  // Another user runs an installed copy (multi-user.helpers' installedCli): this checkout may sit in a 0700 folder.
  const child = spawn(process.execPath, [as?.cli ?? CLI, ...args], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
    ...(as ? { uid: as.uid, gid: as.gid } : {}),
  });
  started.add(child);
  const out = collect(child);
  const { code } = await exitOf(child);
  return { code, ...out };
}

/** Starts `conduit-endpoint start NAME` (or `restart NAME`) and waits for `>>> Endpoint ID: <id> <<<`. */
export async function startMep(
  name: string,
  env: NodeJS.ProcessEnv,
  args: string[] = [],
  command: "start" | "restart" = "start",
): Promise<Mep> {
  const child = spawn(process.execPath, [CLI, command, name, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
  started.add(child);
  const output = collect(child);
  const exited = exitOf(child);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const id = />>> Endpoint ID: ([0-9a-f-]{36}) <<</.exec(output.stdout)?.[1];
    if (id) return { child, endpointId: id, output, exited };
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`conduit-endpoint ${command} ${name} did not print its id: ${output.stderr.trim()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A row of `conduit-endpoint list`; `cause` only for a Failed endpoint. */
export interface ListRow {
  id: string;
  status: string;
  cause?: string;
}

/** One row per endpoint of `conduit-endpoint list`, by name. */
export function parseList(stdout: string): Map<string, ListRow> {
  const lines = stdout.split("\n");
  const rows = new Map<string, ListRow>();
  if (stdout.startsWith("No endpoints configured!")) return rows;
  const header = lines.findIndex((l) =>
    /^\|\s+Endpoint ID\s+\|\s+Status\s+\|\s+Endpoint Name\s+\|\s+Cause\s+\|$/.test(l),
  );
  if (header < 0 || !/^\+(=+\+){4}$/.test(lines[header + 1] ?? "")) throw new Error(`Not the list table:\n${stdout}`);
  for (const line of lines.slice(header + 2)) {
    if (/^\+(-+\+){4}$/.test(line) || line === "") continue;
    const cells = line.split("|").map((c) => c.trim());
    if (cells.length !== 6) throw new Error(`Bad table row: ${line}`);
    rows.set(cells[3], { id: cells[1], status: cells[2], ...(cells[4] === "" ? {} : { cause: cells[4] }) });
  }
  return rows;
}

export async function listStates(env: NodeJS.ProcessEnv): Promise<Map<string, ListRow>> {
  const { code, stdout, stderr } = await runCli(["list"], env);
  if (code !== 0) throw new Error(`list failed: ${stderr}`);
  return parseList(stdout);
}

/** A URL where nothing listens: a port that was free a moment ago. */
export async function closedServiceUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

export function readLog(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Kills every process these helpers started (and their UEP groups via the MEP's record), removes temp dirs. */
export async function cleanupProcesses(): Promise<void> {
  for (const child of started) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
  started.clear();
  for (const dir of tempDirs.splice(0)) {
    for (const record of uepRecordsUnder(dir)) {
      try {
        process.kill(-record.pgid, "SIGKILL");
      } catch {
        // gone already
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

function uepRecordsUnder(userDir: string): Array<{ pgid: number }> {
  const out: Array<{ pgid: number }> = [];
  try {
    for (const entry of readdirSync(userDir)) {
      const text = readLog(join(userDir, entry, "ueps.json"));
      if (text) out.push(...((JSON.parse(text) as { ueps: Array<{ pgid: number }> }).ueps ?? []));
    }
  } catch {
    // nothing recorded
  }
  return out;
}

export interface TestService {
  url: string;
  token: string;
  /** The service's own RabbitMQ vhost (its queues vanish with it at close). */
  amqpUrl: string;
  close(): Promise<void>;
}

/**
 * The real service, in process, on PGlite in a temp dir, on a free port, on a
 * RabbitMQ vhost of its own (services side by side on one vhost would consume
 * each other's results).
 */
export async function startTestService(): Promise<TestService> {
  const { startService } = await import("@conduit/service");
  const vhost = await createVhost();
  const dataDir = mkdtempSync(join(tmpdir(), "conduit-svc-"));
  const service = await startService({ port: 0, dataDir, writeCredentials: false, amqpUrl: vhost.url });
  return {
    url: service.url,
    token: service.adminToken,
    amqpUrl: vhost.url,
    async close() {
      await service.close();
      rmSync(dataDir, { recursive: true, force: true });
      await vhost.dispose();
    },
  };
}

/**
 * Starts a service before the file's tests; after them, ends every process
 * the tests started and closes it. Read `.service` inside tests and hooks.
 */
export function useTestService(options: { afterProcesses?: () => void } = {}): { readonly service: TestService } {
  const context = {} as { service: TestService };
  beforeAll(async () => {
    context.service = await startTestService();
  });
  afterAll(async () => {
    await cleanupProcesses();
    // After the processes, which may run as the users it removes.
    options.afterProcesses?.();
    await context.service?.close();
  });
  return context;
}
