/**
 * Cancel on the HighThroughputEngine, which queues tasks in its interchange:
 * a task counts as started (and is reported `running`) only once it is sent
 * to a block, prefetched ones included; until then a cancel takes it out of
 * the queue and it never runs. First the engine alone, then a real UEP
 * process on the real RabbitMQ, with the service played by the harness.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type BrokerLink,
  type CancelTasksMessage,
  connectBroker,
  DEFAULT_AMQP_URL,
  type TaskMessage,
} from "@conduit/protocol";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { EngineResult } from "../src/engine-task.js";
import type { Engine, EngineConfig } from "../src/engines/engine-types.js";
import { createEngine } from "../src/engines/registry.js";
import type { Logger } from "../src/logging.js";
import { jsonArgs, sourceCode } from "./engines.harness.js";
import { UepHarness } from "./user-endpoint.harness.js";

/** Writes `marker`, then waits until `release` exists (when given). */
const MARK_AND_WAIT = `async (marker, release) => {
  const fs = await import("node:fs");
  fs.writeFileSync(marker, "ran");
  while (release && !fs.existsSync(release)) await new Promise((r) => setTimeout(r, 20));
  return "done";
}`;

/** One block of one worker, never a second one. */
function hte(prefetchCapacity: number): EngineConfig {
  return {
    type: "HighThroughputEngine",
    max_workers_per_node: 1,
    prefetch_capacity: prefetchCapacity,
    job_status_kwargs: { strategy_period: 0.2 },
    provider: { type: "LocalProvider", init_blocks: 1, min_blocks: 1, max_blocks: 1 },
  };
}

let scratch: string;
beforeEach(() => {
  scratch = mkdtempSync(join(tmpdir(), "conduit-cancel-hte-"));
});
afterEach(() => {
  rmSync(scratch, { recursive: true, force: true });
});

describe("HighThroughputEngine.cancel", () => {
  let engine: Engine | undefined;
  afterEach(async () => {
    await engine?.shutdown();
    engine = undefined;
  });

  it("reports tasks started when sent to a block (prefetched too) and drops only a task still queued", async () => {
    engine = createEngine(hte(1));
    expect(engine.reportsStarts).toBe(true);
    const started: string[] = [];
    const results = new Map<string, EngineResult>();
    const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };
    await engine.start({
      runDir: scratch,
      log: quiet,
      env: process.env,
      onResult: (result) => results.set(result.taskId, result),
      onStarted: (taskIds) => started.push(...taskIds),
    });
    const release = join(scratch, "release");
    const marker = (id: string) => join(scratch, `${id}.ran`);
    for (const id of ["long", "prefetched", "queued"]) {
      engine.submit({
        taskId: id,
        functionId: "mark-and-wait",
        function: sourceCode(MARK_AND_WAIT),
        args: jsonArgs([marker(id), id === "long" ? release : null]),
      });
    }
    // The block takes one task for its worker and one more to prefetch; the third stays in the interchange.
    await expect.poll(() => existsSync(marker("long")), { timeout: 30_000, interval: 50 }).toBe(true);
    await expect.poll(() => [...started], { timeout: 10_000 }).toEqual(["long", "prefetched"]);
    expect(engine.status()).toMatchObject({ outstandingTasks: 3, pendingTasks: 2 });

    expect(engine.cancel?.("long")).toBe(false);
    expect(engine.cancel?.("prefetched")).toBe(false);
    expect(engine.cancel?.("unknown")).toBe(false);
    expect(engine.cancel?.("queued")).toBe(true);
    expect(engine.cancel?.("queued")).toBe(false);
    expect(engine.status()).toMatchObject({ outstandingTasks: 2, pendingTasks: 1 });

    writeFileSync(release, "");
    await expect.poll(() => results.get("prefetched")?.ok, { timeout: 30_000 }).toBe(true);
    expect(results.get("long")?.ok).toBe(true);
    // Had it stayed queued, it would have been sent to the block when the long task finished, before this result.
    expect(started).toEqual(["long", "prefetched"]);
    expect(results.has("queued")).toBe(false);
    expect(existsSync(marker("queued"))).toBe(false);
    expect(engine.status()).toMatchObject({ outstandingTasks: 0, pendingTasks: 0 });
  });
});

describe("UEP cancel messages on the HighThroughputEngine", () => {
  let h: UepHarness;
  /** The service's part: publishes cancel messages to the UEP's queue. */
  let service: BrokerLink;
  beforeEach(async () => {
    h = await new UepHarness().open();
    service = await connectBroker(DEFAULT_AMQP_URL, { name: "cancel-hte-test" });
  });
  afterEach(async () => {
    await service.close();
    await h.close();
  });

  async function cancel(task: TaskMessage): Promise<void> {
    const message: CancelTasksMessage = {
      v: 1,
      kind: "cancel",
      endpointId: h.endpointId,
      uepId: h.uepId,
      taskIds: [task.taskId],
    };
    await service.publish("", h.queue, message);
  }

  function marking(name: string, release: string | null = null): { task: TaskMessage; marker: string } {
    const marker = join(scratch, `${name}.ran`);
    return { task: h.task({ source: MARK_AND_WAIT, args: [marker, release] }), marker };
  }

  it("keeps queued tasks waiting (not reported running), drops a cancelled one, runs the other after the long one", async () => {
    const release = join(scratch, "release");
    const long = marking("long", release);
    const dropped = marking("dropped");
    const kept = marking("kept");
    h.start({
      template: `engine:
  type: HighThroughputEngine
  max_workers_per_node: 1
  prefetch_capacity: 0
  provider:
    type: LocalProvider
    init_blocks: 1
    min_blocks: 1
    max_blocks: 1
heartbeat_period: 1
`,
    });
    await h.publish(long.task, dropped.task, kept.task);
    await expect.poll(() => existsSync(long.marker), { timeout: 30_000, interval: 50 }).toBe(true);
    // Reported by the engine when it sent the task to the block (not at hand-over, which would report all three).
    await expect.poll(() => h.arrivals, { timeout: 10_000 }).toContain(`running ${long.task.taskId}`);
    // Handed to the engine at once, yet only the long task reached the block's only worker.
    expect(h.arrivals).not.toContain(`running ${dropped.task.taskId}`);
    expect(h.arrivals).not.toContain(`running ${kept.task.taskId}`);

    await cancel(dropped.task);
    await expect
      .poll(() => h.log(), { timeout: 10_000 })
      .toContain(`Task ${dropped.task.taskId} was cancelled before it started; dropped it`);
    // A cancel for the task on the worker cannot stop it: it runs to the end.
    await cancel(long.task);
    await expect
      .poll(() => h.log(), { timeout: 10_000 })
      .toContain(`Task ${long.task.taskId} was cancelled after it started; it runs to the end`);
    expect(existsSync(kept.marker)).toBe(false);
    expect(h.arrivals).not.toContain(`running ${kept.task.taskId}`);

    writeFileSync(release, "");
    await expect.poll(() => h.resultOf(kept.task.taskId)?.state, { timeout: 30_000 }).toBe("success");
    expect(h.resultOf(long.task.taskId)?.state).toBe("success");
    expect(existsSync(dropped.marker)).toBe(false);
    expect(h.resultOf(dropped.task.taskId)).toBeUndefined();
    expect(h.arrivals).not.toContain(`running ${dropped.task.taskId}`);
    // Every delivery was acked, the dropped one included.
    expect(await h.queueDepth()).toBe(0);
  });
});
