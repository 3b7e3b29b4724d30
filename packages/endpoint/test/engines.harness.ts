/**
 * Shared by the engine tests: start a real engine in a temp run dir, submit
 * function source text, await each result (and check there is exactly one),
 * and watch pids come and go.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JSON_DATA, type Payload, SOURCE_CODE } from "@conduit/protocol";
import { expect } from "vitest";
import type { EngineResult } from "../src/engine-task.js";
import type { Engine, EngineConfig } from "../src/engines/engine-types.js";
import { createEngine } from "../src/engines/registry.js";
import type { Logger } from "../src/logging.js";

let counter = 0;

export function sourceCode(source: string): Payload {
  return { strategy: SOURCE_CODE, data: source };
}

export function jsonArgs(args: unknown[], kwargs?: Record<string, unknown>): Payload {
  return { strategy: JSON_DATA, data: JSON.stringify(kwargs ? { args, kwargs } : { args }) };
}

/** The value of a successful result. */
export function resultValue(result: EngineResult): unknown {
  if (!result.ok) throw new Error(`task ${result.taskId} failed: ${result.error.name}: ${result.error.message}`);
  return JSON.parse(result.value.data);
}

/** Waits (without spinning) until a file exists, then returns the pid of the worker running it. */
export const WAIT_FOR_FILE = `async (path) => {
  const fs = process.getBuiltinModule("node:fs");
  while (!fs.existsSync(path)) await new Promise((r) => setTimeout(r, 20));
  return process.pid;
}`;

/** Returns its worker's pid and the pid of the worker's parent (a block manager, or the UEP). */
export const PIDS = "() => ({ pid: process.pid, ppid: process.ppid })";

/**
 * A HighThroughputEngine of one LocalProvider block (at most one) of one
 * worker, scaling every 0.2 s; `extra` overrides engine options, `provider`
 * the provider's.
 */
export function hteConfig(extra: Record<string, unknown> = {}, provider: Record<string, unknown> = {}): EngineConfig {
  return {
    type: "HighThroughputEngine",
    max_workers_per_node: 1,
    job_status_kwargs: { strategy_period: 0.2 },
    ...extra,
    provider: { type: "LocalProvider", init_blocks: 1, min_blocks: 0, max_blocks: 1, ...provider },
  };
}

export class EngineHarness {
  readonly logs: string[] = [];
  readonly results = new Map<string, EngineResult[]>();
  private readonly waiters = new Map<string, (result: EngineResult) => void>();

  private constructor(
    readonly engine: Engine,
    readonly runDir: string,
  ) {}

  static async start(config: EngineConfig, env: NodeJS.ProcessEnv = process.env): Promise<EngineHarness> {
    return EngineHarness.startEngine(createEngine(config), env);
  }

  /** Starts an engine built by the test (e.g. around a provider with a recorded command runner). */
  static async startEngine(engine: Engine, env: NodeJS.ProcessEnv = process.env): Promise<EngineHarness> {
    const runDir = mkdtempSync(join(tmpdir(), "conduit-engine-"));
    const harness = new EngineHarness(engine, runDir);
    const line = (level: string) => (message: string) => harness.logs.push(`${level} ${message}`);
    const log: Logger = { debug: line("DEBUG"), info: line("INFO"), warn: line("WARNING"), error: line("ERROR") };
    await harness.engine.start({
      runDir,
      log,
      env,
      onResult: (result) => {
        const list = harness.results.get(result.taskId) ?? [];
        list.push(result);
        harness.results.set(result.taskId, list);
        harness.waiters.get(result.taskId)?.(result);
      },
    });
    return harness;
  }

  /** Submits `source` with `args`; the promise is its result. */
  submit(source: string, args: unknown[] = [], kwargs?: Record<string, unknown>): Promise<EngineResult> {
    const taskId = `task-${process.pid}-${++counter}`;
    const result = new Promise<EngineResult>((resolve) => this.waiters.set(taskId, resolve));
    this.engine.submit({
      taskId,
      functionId: `fn-${Buffer.from(source).toString("base64url").slice(0, 40)}-${source.length}`,
      function: sourceCode(source),
      args: jsonArgs(args, kwargs),
    });
    return result;
  }

  async run(source: string, args: unknown[] = [], kwargs?: Record<string, unknown>): Promise<unknown> {
    return resultValue(await this.submit(source, args, kwargs));
  }

  /** Every task got exactly one result. */
  expectOneResultEach(): void {
    for (const [taskId, list] of this.results) expect(list.length, `results of ${taskId}`).toBe(1);
  }

  async close(): Promise<void> {
    await this.engine.shutdown();
    rmSync(this.runDir, { recursive: true, force: true });
  }
}

/** A zombie (exited, not yet reaped by whatever adopted it) counts as gone. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

export async function expectGone(pids: number[]): Promise<void> {
  await expect.poll(() => pids.filter(isAlive), { timeout: 15_000, interval: 100 }).toEqual([]);
}

export function killQuietly(pid: number, signal: NodeJS.Signals = "SIGKILL"): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/**
 * A stand-in UEP: a separate Node process that starts an engine (from the
 * built package), runs `tasks` PIDS tasks, prints their results as one JSON
 * line, and then stays up until it is killed.
 */
export async function startUepFixture(
  config: EngineConfig,
  runDir: string,
  tasks: number,
): Promise<{ child: ChildProcess; pids: { pid: number; ppid: number }[] }> {
  const registry = new URL("../dist/engines/registry.js", import.meta.url).href;
  const script = `
    import { createEngine } from ${JSON.stringify(registry)};
    const quiet = { debug() {}, info() {}, warn() {}, error: (m) => process.stderr.write(m + "\\n") };
    const engine = createEngine(${JSON.stringify(config)});
    const results = [];
    await engine.start({ runDir: ${JSON.stringify(runDir)}, log: quiet, env: process.env, onResult(r) {
      results.push(JSON.parse(r.value.data));
      if (results.length === ${tasks}) process.stdout.write(JSON.stringify(results) + "\\n");
    } });
    for (let i = 0; i < ${tasks}; i++) engine.submit({ taskId: "t" + i, functionId: "pids",
      function: { strategy: "conduit.SourceCode", data: ${JSON.stringify(`async () => { await new Promise((r) => setTimeout(r, 300)); return (${PIDS})(); }`)} },
      args: { strategy: "conduit.JSONData", data: '{"args":[]}' } });
    setInterval(() => {}, 60_000);
  `;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let output = "";
  child.stdout?.on("data", (chunk) => {
    output += chunk;
  });
  await expect.poll(() => output.includes("\n"), { timeout: 20_000 }).toBe(true);
  return { child, pids: JSON.parse(output) };
}

/**
 * Runs `body` with a {@link startUepFixture} in a temp run dir of its own,
 * then kills the stand-in UEP (if `body` has not) and removes the run dir.
 */
export async function withUepFixture(
  config: EngineConfig,
  tasks: number,
  body: (uep: { child: ChildProcess; pids: { pid: number; ppid: number }[] }) => Promise<void>,
): Promise<void> {
  const runDir = mkdtempSync(join(tmpdir(), "conduit-uep-"));
  let child: ChildProcess | undefined;
  try {
    const uep = await startUepFixture(config, runDir, tasks);
    child = uep.child;
    await body(uep);
  } finally {
    if (child?.pid !== undefined) killQuietly(child.pid);
    rmSync(runDir, { recursive: true, force: true });
  }
}

/** The file's text, or "" while it does not exist (for polling). */
export function readOr(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}
