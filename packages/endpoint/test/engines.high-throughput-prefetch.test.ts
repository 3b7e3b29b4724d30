/**
 * HighThroughputEngine prefetch (prefetch_capacity): a block holds tasks
 * beyond its idle workers and runs them in order as workers free up; tasks it
 * held but never started survive the block (they are queued again without
 * using a retry), and shutdown fails them like the rest.
 */
import { appendFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { EngineResult } from "../src/engine-task.js";
import { MAX_PREFETCH_PER_WORKER, PREFETCH_WINDOW_MS, prefetchDepth } from "../src/engines/interchange.js";
import { BATCH_CHARS, intoBatches } from "../src/worker/interchange-protocol.js";
import { EngineHarness, expectGone, hteConfig, jsonArgs, resultValue, sourceCode } from "./engines.harness.js";
import { HANG_FIRST_TIME, markerPids } from "./engines.high-throughput.helpers.js";

/** Appends `name` to `log` (so the order tasks ran in can be read back) and returns its block manager's pid. */
const RECORD = `(log, name) => {
  process.getBuiltinModule("node:fs").appendFileSync(log, name + "\\n");
  return process.ppid;
}`;

let h: EngineHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** A long task on the only worker, then three short ones: two are prefetched by the block, one stays queued. */
async function longThenShorts(harness: EngineHarness): Promise<{
  first: { pid: number; ppid: number };
  long: Promise<EngineResult>;
  shorts: Promise<EngineResult>[];
  order: string;
}> {
  const marker = join(harness.runDir, "marker");
  const order = join(harness.runDir, "order");
  appendFileSync(order, "");
  const long = harness.submit(HANG_FIRST_TIME, [marker]);
  const first = await markerPids(marker);
  const shorts = ["a", "b", "c"].map((name) => harness.submit(RECORD, [order, name]));
  await expect
    .poll(() => harness.engine.status(), { timeout: 10_000 })
    .toMatchObject({
      outstandingTasks: 4,
      pendingTasks: 3,
      idleWorkers: 0,
    });
  return { first, long, shorts, order };
}

describe("HighThroughputEngine prefetch", () => {
  it("rejects a negative prefetch_capacity with a clear error", async () => {
    await expect(EngineHarness.start(hteConfig({ prefetch_capacity: -1 }))).rejects.toThrow(/prefetch_capacity/);
  });

  it("holds the next tasks in the block behind a long one and runs them in order once its worker frees up", async () => {
    h = await EngineHarness.start(hteConfig());
    const { first, shorts, order } = await longThenShorts(h);
    // Kill the long task's worker: the block's replacement worker then runs the held tasks, in order.
    process.kill(first.pid, "SIGKILL");
    const results = await Promise.all(shorts);
    expect(results.map(resultValue)).toEqual([first.ppid, first.ppid, first.ppid]);
    expect(readFileSync(order, "utf8")).toBe("a\nb\nc\n");
    expect(h.logs.some((line) => line.includes("prefetched task"))).toBe(false);
    h.expectOneResultEach();
  });

  it("queues again the tasks a block held but never started when the block is killed with SIGKILL", async () => {
    h = await EngineHarness.start(hteConfig());
    const { first, long, shorts, order } = await longThenShorts(h);
    process.kill(first.ppid, "SIGKILL");
    // The running task is lost (max_retries_on_system_failure is 0); the prefetched ones never ran, so they run on a new block.
    expect(await long).toMatchObject({ ok: false, error: { code: "WORKER_LOST" } });
    const results = await Promise.all(shorts);
    const blocks = results.map(resultValue) as number[];
    expect(new Set(blocks).size).toBe(1);
    expect(blocks[0]).not.toBe(first.ppid);
    expect(readFileSync(order, "utf8")).toBe("a\nb\nc\n");
    expect(h.logs).toContainEqual(
      "WARNING Block 0 was lost holding 2 prefetched task(s) it had not started; queued them again.",
    );
    h.expectOneResultEach();
    await expectGone([first.pid, first.ppid]);
  });

  it("re-runs the running task per max_retries_on_system_failure and the held ones once, when the block dies", async () => {
    h = await EngineHarness.start(hteConfig({ max_retries_on_system_failure: 1 }));
    const { first, long, shorts, order } = await longThenShorts(h);
    process.kill(first.ppid, "SIGKILL");
    const rerun = await long;
    expect(rerun.ok).toBe(true);
    if (rerun.ok) expect((JSON.parse(rerun.value.data) as { ppid: number }).ppid).not.toBe(first.ppid);
    expect((await Promise.all(shorts)).map(resultValue)).not.toContain(first.ppid);
    expect(readFileSync(order, "utf8").split("\n").sort()).toEqual(["", "a", "b", "c"]);
    h.expectOneResultEach();
  });

  it("fails prefetched tasks with ENGINE_SHUTDOWN when the engine shuts down", async () => {
    h = await EngineHarness.start(hteConfig());
    const { first, long, shorts } = await longThenShorts(h);
    await h.engine.shutdown();
    for (const result of await Promise.all([long, ...shorts])) {
      expect(result).toMatchObject({ ok: false, error: { code: "ENGINE_SHUTDOWN" } });
    }
    h.expectOneResultEach();
    await expectGone([first.pid, first.ppid]);
  });

  it("runs a burst of big tasks, which travel in several frames", async () => {
    h = await EngineHarness.start(hteConfig());
    const big = "x".repeat(BATCH_CHARS / 2 + 1);
    const results = await Promise.all([1, 2, 3, 4].map((i) => h?.run("(s, i) => s.length + i", [big, i])));
    expect(results).toEqual([1, 2, 3, 4].map((i) => big.length + i));
  });

  it("sends a task only to an idle worker when prefetch_capacity is 0", async () => {
    h = await EngineHarness.start(hteConfig({ prefetch_capacity: 0 }));
    const { first, shorts, order } = await longThenShorts(h);
    process.kill(first.pid, "SIGKILL");
    expect((await Promise.all(shorts)).map(resultValue)).toEqual([first.ppid, first.ppid, first.ppid]);
    expect(readFileSync(order, "utf8")).toBe("a\nb\nc\n");
  });
});

describe("prefetchDepth", () => {
  it("keeps prefetch_capacity for a block answering few tasks a second (long tasks)", () => {
    expect(prefetchDepth(2, 2, 0)).toBe(2);
    expect(prefetchDepth(2, 2, 40)).toBe(2);
    expect(prefetchDepth(5, 1, 100)).toBe(5);
  });

  it("lets a fast block hold what it answers in PREFETCH_WINDOW_MS, up to MAX_PREFETCH_PER_WORKER per worker", () => {
    const rate = (tasks: number) => (tasks * 1000) / PREFETCH_WINDOW_MS;
    expect(prefetchDepth(2, 2, rate(10))).toBe(10);
    expect(prefetchDepth(2, 2, rate(10) + 1)).toBe(11);
    expect(prefetchDepth(2, 2, rate(1000))).toBe(2 * MAX_PREFETCH_PER_WORKER);
    expect(prefetchDepth(2, 8, rate(1000))).toBe(8 * MAX_PREFETCH_PER_WORKER);
  });

  it("never prefetches with prefetch_capacity 0, however fast the block", () => {
    expect(prefetchDepth(0, 2, 1e6)).toBe(0);
  });
});

describe("intoBatches", () => {
  const task = (taskId: string, chars: number) => ({
    taskId,
    functionId: "f",
    function: sourceCode("() => 1"),
    args: jsonArgs(["x".repeat(chars)]),
  });

  it("keeps small tasks in one batch, in order", () => {
    const tasks = ["a", "b", "c"].map((id) => task(id, 10));
    expect(intoBatches(tasks)).toEqual([tasks]);
  });

  it("starts a new batch before one would pass BATCH_CHARS, and sends a bigger task alone", () => {
    const [a, b, c, d] = [
      task("a", BATCH_CHARS / 2),
      task("b", BATCH_CHARS / 2),
      task("c", BATCH_CHARS * 2),
      task("d", 1),
    ];
    expect(intoBatches([a, b, c, d]).map((batch) => batch.map((t) => t.taskId))).toEqual([["a"], ["b"], ["c"], ["d"]]);
    expect(intoBatches([])).toEqual([]);
  });
});
