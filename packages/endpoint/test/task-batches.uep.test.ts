/**
 * `tasks` messages (the task hop's batches) in a real UEP process on the real
 * RabbitMQ: each task of a batch is checked and run on its own; the message is
 * acked only once every task in it is settled, so a UEP killed holding a batch
 * gives all of it back to the next UEP; a cancel drops one task of a batch and
 * the batch is still acked. The service is played by the harness.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type BrokerLink,
  type CancelTasksMessage,
  connectBroker,
  DEFAULT_AMQP_URL,
  type TaskBatchMessage,
  type TaskMessage,
} from "@conduit/protocol";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type UepChild, UepHarness } from "./user-endpoint.harness.js";

const ONE_WORKER = `engine:
  type: ThreadPoolEngine
  max_workers: 1
heartbeat_period: 1
`;

/** Writes `marker`, then waits until `release` exists (when given). */
const MARK_AND_WAIT = `async (marker, release) => {
  const fs = await import("node:fs");
  fs.writeFileSync(marker, "ran");
  while (release && !fs.existsSync(release)) await new Promise((r) => setTimeout(r, 20));
  return "done";
}`;

let h: UepHarness;
let scratch: string;
/** The service's part: publishes batches and cancels to the UEP's queue. */
let service: BrokerLink;
beforeEach(async () => {
  h = await new UepHarness().open();
  service = await connectBroker(DEFAULT_AMQP_URL, { name: "task-batches-uep-test" });
  scratch = mkdtempSync(join(tmpdir(), "conduit-task-batches-"));
});
afterEach(async () => {
  await service.close();
  await h.close();
  rmSync(scratch, { recursive: true, force: true });
});

async function publishBatch(tasks: unknown[]): Promise<void> {
  await service.publish("", h.queue, { v: 1, kind: "tasks", tasks } as TaskBatchMessage);
}

function marking(name: string, release: string | null = null): { task: TaskMessage; marker: string } {
  const marker = join(scratch, `${name}.ran`);
  return { task: h.task({ source: MARK_AND_WAIT, args: [marker, release] }), marker };
}

/** Kills the UEP and waits until the broker has seen its connection go (its unacked messages are back in the queue). */
async function kill(uep: UepChild): Promise<void> {
  uep.child.kill("SIGKILL");
  await uep.exit;
  const channel = await service.ready();
  await expect.poll(async () => (await channel.checkQueue(h.queue)).consumerCount, { timeout: 15_000 }).toBe(0);
}

describe("UEP task batches", () => {
  it("runs each task of a batch on its own, fails a malformed one by its field, and acks the batch", async () => {
    const a = h.task({ args: [1, 2] });
    const b = h.task({ args: [3, 4] });
    const bad = { ...h.task(), args: { strategy: "conduit.JSONData" } };
    const uep = h.start({ template: ONE_WORKER });
    await publishBatch([a, bad, b]);
    expect((await h.outcome(a)).result?.data).toBe("3");
    expect((await h.outcome(b)).result?.data).toBe("7");
    const failed = await h.outcome(bad as TaskMessage);
    expect(failed.state).toBe("failed");
    expect(failed.error?.code).toBe("BAD_TASK");
    expect(failed.error?.message).toContain("tasks[1].args.data is missing");
    await kill(uep);
    // Acked: nothing went back to the queue when the UEP's connection closed.
    expect(await h.queueDepth()).toBe(0);
  });

  it("gives a batch back whole when the UEP is killed holding it; the next UEP finishes it", async () => {
    const release = join(scratch, "release");
    const fast = h.task({ args: [5, 6] });
    const long = marking("long", release);
    const first = h.start({ template: ONE_WORKER });
    await publishBatch([fast, long.task]);
    expect((await h.outcome(fast)).state).toBe("success");
    await expect.poll(() => existsSync(long.marker), { timeout: 30_000, interval: 50 }).toBe(true);
    await kill(first);
    // The first task's result was sent, but the batch was not acked: it is back, whole.
    expect(await h.queueDepth()).toBe(1);
    expect(h.resultOf(long.task.taskId)).toBeUndefined();

    rmSync(long.marker);
    writeFileSync(release, "");
    const second = h.start({ template: ONE_WORKER });
    expect((await h.outcome(long.task, 30_000)).state).toBe("success");
    expect(existsSync(long.marker)).toBe(true);
    // The finished task ran again there (its second result is the service's to drop: it stores only the first).
    await expect.poll(() => h.results.filter((r) => r.taskId === fast.taskId).length, { timeout: 20_000 }).toBe(2);
    await kill(second);
    expect(await h.queueDepth()).toBe(0);
  });

  it("drops one cancelled task of a batch and still acks the batch once the rest finished", async () => {
    const release = join(scratch, "release");
    const long = marking("long", release);
    const queued = marking("queued");
    const uep = h.start({ template: ONE_WORKER });
    await publishBatch([long.task, queued.task]);
    await expect.poll(() => existsSync(long.marker), { timeout: 30_000, interval: 50 }).toBe(true);
    const cancel: CancelTasksMessage = {
      v: 1,
      kind: "cancel",
      endpointId: h.endpointId,
      uepId: h.uepId,
      taskIds: [queued.task.taskId],
    };
    await service.publish("", h.queue, cancel);
    await expect
      .poll(() => h.log(), { timeout: 10_000 })
      .toContain(`Task ${queued.task.taskId} was cancelled before it started; dropped it`);
    writeFileSync(release, "");
    expect((await h.outcome(long.task)).state).toBe("success");
    await kill(uep);
    expect(existsSync(queued.marker)).toBe(false);
    expect(h.resultOf(queued.task.taskId)).toBeUndefined();
    expect(await h.queueDepth()).toBe(0);
  });
});
