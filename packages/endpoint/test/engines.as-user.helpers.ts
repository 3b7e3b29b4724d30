/**
 * Runs a real engine as a throwaway local (non-root) user, from the packed
 * packages installed in a world-readable prefix (multi-user.helpers.ts), as a
 * UEP of a mapped user would: the limits the kernel applies only to ordinary
 * users (RLIMIT_NPROC) and the cleanup of that user's processes are proven
 * there. A small driver script, run through setpriv, starts the engine with
 * the given config, runs each task it reads on stdin (one JSON line each),
 * prints each result as a JSON line, and shuts the engine down when stdin closes.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { EngineResult } from "../src/engine-task.js";
import type { LocalTestUser } from "./multi-user.helpers.js";

const DRIVER = `
import { randomUUID } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
const dist = process.argv[2];
const { createEngine } = await import(join(dist, "engines/registry.js"));
const engine = createEngine(JSON.parse(process.argv[3]));
const say = (m) => process.stdout.write(JSON.stringify(m) + "\\n");
const log = { debug() {}, info: (m) => say({ log: m }), warn: (m) => say({ log: m }), error: (m) => say({ log: m }) };
try {
  await engine.start({
    runDir: mkdtempSync(join(tmpdir(), "conduit-as-user-")),
    log,
    env: process.env,
    onResult: (result) => say({ result }),
  });
} catch (err) {
  say({ startError: err.message });
  process.exit(0);
}
say({ started: true });
for await (const line of createInterface({ input: process.stdin })) {
  const { taskId, source, args } = JSON.parse(line);
  engine.submit({
    taskId,
    functionId: randomUUID(),
    function: { strategy: "conduit.SourceCode", data: source },
    args: { strategy: "conduit.JSONData", data: JSON.stringify({ args: args ?? [] }) },
  });
}
await engine.shutdown();
process.exit(0);
`;

export interface EngineAsUser {
  /** Resolves once the engine started, or rejects with its start error. */
  started: Promise<void>;
  run(source: string, args?: unknown[]): Promise<EngineResult>;
  logs: string[];
  /** Closes stdin (the engine shuts down) and waits for the driver to exit. */
  close(): Promise<void>;
}

/** `cli` is installedCli()'s `<prefix>/bin/conduit-endpoint`; `env` is added to the user's. */
export function engineAsUser(
  cli: string,
  user: LocalTestUser,
  config: Record<string, unknown>,
  env: Record<string, string> = {},
): EngineAsUser {
  const dist = join(dirname(dirname(cli)), "lib", "node_modules", "@conduit", "endpoint", "dist");
  const dir = mkdtempSync(join(tmpdir(), "conduit-driver-"));
  chmodSync(dir, 0o755);
  const script = join(dir, "driver.mjs");
  writeFileSync(script, DRIVER, { mode: 0o644 });
  const child: ChildProcess = spawn(
    "setpriv",
    [
      `--reuid=${user.uid}`,
      `--regid=${user.gid}`,
      "--init-groups",
      "--",
      process.execPath,
      script,
      dist,
      JSON.stringify(config),
    ],
    {
      cwd: "/tmp",
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: user.home, USER: user.name, ...env },
      stdio: ["pipe", "pipe", "inherit"],
    },
  );
  const logs: string[] = [];
  const waiting = new Map<string, (r: EngineResult) => void>();
  let onStart: { resolve(): void; reject(e: Error): void } | undefined;
  const started = new Promise<void>((resolve, reject) => {
    onStart = { resolve, reject };
  });
  let buffered = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    buffered += chunk.toString("utf8");
    let newline = buffered.indexOf("\n");
    while (newline >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      newline = buffered.indexOf("\n");
      let message: { log?: string; result?: EngineResult; started?: boolean; startError?: string };
      try {
        message = JSON.parse(line);
      } catch {
        logs.push(line);
        continue;
      }
      if (message.log) logs.push(message.log);
      if (message.started) onStart?.resolve();
      if (message.startError) onStart?.reject(new Error(message.startError));
      if (message.result) waiting.get(message.result.taskId)?.(message.result);
    }
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  void exited.then(() => onStart?.reject(new Error(`the driver exited; its log: ${logs.join(" | ")}`)));
  return {
    started,
    logs,
    run(source, args) {
      const taskId = randomUUID();
      const result = new Promise<EngineResult>((resolve) => waiting.set(taskId, resolve));
      child.stdin?.write(`${JSON.stringify({ taskId, source, args })}\n`);
      return result;
    },
    async close() {
      child.stdin?.end();
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Whether a process with this pid is alive (a zombie counts as ended). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}
