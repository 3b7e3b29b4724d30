/**
 * `tasks` messages (the task hop's batches) in a real UEP process on the real
 * RabbitMQ: each task of a batch is checked and run on its own; the message is
 * acked only once every task in it is settled, so a UEP killed holding a batch
 * gives all of it back to the next UEP, which skips the tasks the first had
 * finished (recorded in its batch journal); a cancel drops one task of a batch and
 * the batch is still acked. The service is played by the harness.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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
import { BATCH_JOURNAL_DIR } from "../src/user-endpoint/batch-journal.js";
import { type UepChild, UepHarness } from "./user-endpoint.harness.js";

const ONE_WORKER = `engine:
  type: ThreadPoolEngine
  max_workers: 1
heartbeat_period: 1
`;

/** Appends a line to `marker` (one per run), then waits until `release` exists (when given). */
const MARK_AND_WAIT = `async (marker, release) => {
  const fs = await import("node:fs");
  fs.appendFileSync(marker, "ran\\n");
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

/** How many times the task of this marker ran. */
function runs(marker: string): number {
  return existsSync(marker) ? readFileSync(marker, "utf8").split("\n").length - 1 : 0;
}

/** The task ids recorded in the UEP's batch journal (one batch in flight at a time here). */
function journalLines(): string[] {
  const dir = join(h.userDir, h.uepName, BATCH_JOURNAL_DIR);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => readFileSync(join(dir, name), "utf8").split("\n").filter(Boolean));
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

  it("gives a batch back whole when the UEP is killed -9 holding it; the next UEP runs only what the first had not finished", async () => {
    const release = join(scratch, "release");
    const before = [0, 1, 2, 3, 4].map((i) => marking(`before-${i}`));
    const long = marking("long", release);
    const after = [0, 1, 2].map((i) => marking(`after-${i}`));
    const all = [...before, long, ...after];
    const first = h.start({ template: ONE_WORKER });
    await publishBatch(all.map((t) => t.task));
    // One worker: the five tasks before the long one finish (their results confirmed and recorded), then it blocks.
    await expect.poll(() => journalLines().length, { timeout: 30_000, interval: 50 }).toBe(before.length);
    expect(journalLines().sort()).toEqual(before.map((t) => t.task.taskId).sort());
    await expect.poll(() => runs(long.marker), { timeout: 30_000, interval: 50 }).toBe(1);
    await kill(first);
    // The batch was not acked: it is back, whole.
    expect(await h.queueDepth()).toBe(1);
    expect(h.resultOf(long.task.taskId)).toBeUndefined();

    writeFileSync(release, "");
    const second = h.start({ template: ONE_WORKER });
    for (const t of [long, ...after]) expect((await h.outcome(t.task, 30_000)).state).toBe("success");
    await expect.poll(() => h.queueDepth(), { timeout: 20_000 }).toBe(0);
    await kill(second);
    expect(await h.queueDepth()).toBe(0);
    // None lost, and what the first UEP finished did not run again: once each, the one it was running twice.
    for (const t of [...before, ...after]) expect(runs(t.marker)).toBe(1);
    expect(runs(long.marker)).toBe(2);
    for (const t of all) expect(h.results.filter((r) => r.taskId === t.task.taskId)).toHaveLength(1);
    const came = h.logLines().find((l) => l.msg.startsWith("A batch of 9 tasks came back"));
    expect(came).toMatchObject({ finished: before.length });
    // Acked: its record is gone.
    expect(journalLines()).toEqual([]);
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
