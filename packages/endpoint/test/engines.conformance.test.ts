/**
 * What every engine must do, run against each one with real workers:
 * results of plain and async functions, errors with their stack, the
 * environment, no head-of-line blocking, exactly one result per task, and a
 * shutdown that fails what is left and leaves no process behind.
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EngineConfig } from "../src/engines/engine-types.js";
import { EngineHarness, expectGone, PIDS, resultValue, WAIT_FOR_FILE } from "./engines.harness.js";

const ENGINES: [string, EngineConfig][] = [
  ["ThreadPoolEngine", { type: "ThreadPoolEngine", max_workers: 2 }],
  ["ProcessPoolEngine", { type: "ProcessPoolEngine", max_workers: 2 }],
  [
    "HighThroughputEngine",
    {
      type: "HighThroughputEngine",
      max_workers_per_node: 2,
      provider: { type: "LocalProvider", init_blocks: 1, min_blocks: 0, max_blocks: 1 },
    },
  ],
];

describe.each(ENGINES)("%s", (type, config) => {
  let h: EngineHarness;
  const pids = new Set<number>();

  beforeAll(async () => {
    h = await EngineHarness.start(config, { ...process.env, CONDUIT_TEST_VALUE: "from-context" });
  });

  afterAll(async () => {
    await h?.close();
  });

  it("runs plain and async functions, with args and kwargs", async () => {
    expect(await h.run("(a, b) => a + b", [1, 2])).toBe(3);
    expect(await h.run("function add(a, b) { return a + b; }", [40, 2])).toBe(42);
    expect(await h.run("async (x) => { await new Promise((r) => setTimeout(r, 10)); return x * 2; }", [21])).toBe(42);
    expect(await h.run("async function f(a, kw) { return { a, kw }; }", [1], { k: "v" })).toEqual({
      a: 1,
      kw: { k: "v" },
    });
    expect(await h.run("() => {}")).toBeNull();
  });

  it("returns a thrown TypeError with its name, message and stack", async () => {
    const result = await h.submit("function explode(x) { return x.missing.field; }", [{}]);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error).toMatchObject({ code: "TASK_EXCEPTION", name: "TypeError" });
    expect(result.error.message).toContain("Cannot read properties of undefined (reading 'field')");
    expect(result.error.stack).toMatch(/TypeError: .*\n\s+at explode \(conduit-function-.*\.js:1:\d+\)/);
  });

  it("gives tasks Node's modules, the context's environment and their task id", async () => {
    expect(await h.run('async () => (await import("node:path")).join("a", "b")')).toBe("a/b");
    const result = await h.submit("() => [process.env.CONDUIT_TEST_VALUE, process.env.CONDUIT_TASK_ID]");
    expect(resultValue(result)).toEqual(["from-context", result.taskId]);
  });

  it("runs short tasks while a long one holds a worker (no head-of-line blocking)", async () => {
    const gate = join(h.runDir, `gate-${type}`);
    const long = h.submit(WAIT_FOR_FILE, [gate]);
    const shorts = await Promise.all(Array.from({ length: 5 }, (_, i) => h.run("(i) => i * i", [i])));
    expect(shorts).toEqual([0, 1, 4, 9, 16]);
    expect(h.engine.status()).toMatchObject({ type: h.engine.type, outstandingTasks: 1, pendingTasks: 0 });
    writeFileSync(gate, "");
    expect(typeof resultValue(await long)).toBe("number");
  });

  it("gives each of many tasks exactly one result", async () => {
    const results = await Promise.all(Array.from({ length: 300 }, (_, i) => h.submit("(i) => i + 1", [i])));
    expect(results.map(resultValue)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    for (const [, list] of h.results) expect(list.length).toBe(1);
    const status = h.engine.status();
    expect(status).toMatchObject({ outstandingTasks: 0, pendingTasks: 0, totalWorkers: 2, idleWorkers: 2 });
  });

  it("fails outstanding tasks at shutdown, and later ones, and leaves no process behind", async () => {
    for (let i = 0; i < 4; i++) {
      const { pid, ppid } = (await h.run(PIDS)) as { pid: number; ppid: number };
      if (pid !== process.pid) pids.add(pid);
      if (ppid !== process.pid && ppid !== process.ppid) pids.add(ppid);
    }
    const gate = join(h.runDir, `never-${type}`);
    const stuck = [h.submit(WAIT_FOR_FILE, [gate]), h.submit(WAIT_FOR_FILE, [gate]), h.submit(WAIT_FOR_FILE, [gate])];
    await expect.poll(() => h.engine.status().idleWorkers).toBe(0);
    await h.engine.shutdown();
    for (const result of await Promise.all(stuck)) {
      expect(result).toMatchObject({ ok: false, error: { code: "ENGINE_SHUTDOWN" } });
      if (!result.ok) expect(result.error.message).toMatch(/did not finish because the .* shut down/);
    }
    const late = await h.submit("() => 1");
    expect(late).toMatchObject({ ok: false, error: { code: "ENGINE_SHUTDOWN" } });
    expect(existsSync(gate)).toBe(false);
    h.expectOneResultEach();
    await expectGone([...pids]);
  });
});
