/**
 * `tasks` messages (the task hop's batches) in a real UEP process on the real
 * RabbitMQ: each task of a batch is checked and run on its own; the message is
 * acked only once every task in it is settled, so a UEP killed holding a batch
 * gives all of it back to the next UEP, which skips the tasks the first had
 * finished (recorded in its batch journal); a cancel drops one task of a batch and
 * the batch is still acked. The service is played by the harness.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TaskMessage } from "@conduit/protocol";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BATCH_JOURNAL_DIR } from "../src/user-endpoint/batch-journal.js";
import { ONE_WORKER, TaskQueueFixture } from "./user-endpoint.harness.js";

let f: TaskQueueFixture;
beforeEach(async () => {
  f = await new TaskQueueFixture().open();
});
afterEach(async () => {
  await f.close();
});

/** The task ids recorded in the UEP's batch journal (one batch in flight at a time here). */
function journalLines(): string[] {
  const dir = join(f.h.userDir, f.h.uepName, BATCH_JOURNAL_DIR);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => readFileSync(join(dir, name), "utf8").split("\n").filter(Boolean));
}

describe("UEP task batches", () => {
  it("runs each task of a batch on its own, fails a malformed one by its field, and acks the batch", async () => {
    const { h } = f;
    const a = h.task({ args: [1, 2] });
    const b = h.task({ args: [3, 4] });
    const bad = { ...h.task(), args: { strategy: "conduit.JSONData" } };
    const uep = h.start({ template: ONE_WORKER });
    await f.publishBatch([a, bad, b]);
    expect((await h.outcome(a)).result?.data).toBe("3");
    expect((await h.outcome(b)).result?.data).toBe("7");
    const failed = await h.outcome(bad as TaskMessage);
    expect(failed.state).toBe("failed");
    expect(failed.error?.code).toBe("BAD_TASK");
    expect(failed.error?.message).toContain("tasks[1].args.data is missing");
    await f.kill(uep);
    // Acked: nothing went back to the queue when the UEP's connection closed.
    expect(await h.queueDepth()).toBe(0);
  });

  it("gives a batch back whole when the UEP is killed -9 holding it; the next UEP runs only what the first had not finished", async () => {
    const { h } = f;
    const release = join(f.scratch, "release");
    const before = [0, 1, 2, 3, 4].map((i) => f.marking(`before-${i}`));
    const long = f.marking("long", release);
    const after = [0, 1, 2].map((i) => f.marking(`after-${i}`));
    const all = [...before, long, ...after];
    const first = h.start({ template: ONE_WORKER });
    await f.publishBatch(all.map((t) => t.task));
    // One worker: the five tasks before the long one finish (their results confirmed and recorded), then it blocks.
    await expect.poll(() => journalLines().length, { timeout: 30_000, interval: 50 }).toBe(before.length);
    expect(journalLines().sort()).toEqual(before.map((t) => t.task.taskId).sort());
    await expect.poll(() => f.runs(long.marker), { timeout: 30_000, interval: 50 }).toBe(1);
    await f.kill(first);
    // The batch was not acked: it is back, whole.
    expect(await h.queueDepth()).toBe(1);
    expect(h.resultOf(long.task.taskId)).toBeUndefined();

    writeFileSync(release, "");
    const second = h.start({ template: ONE_WORKER });
    for (const t of [long, ...after]) expect((await h.outcome(t.task, 30_000)).state).toBe("success");
    await expect.poll(() => h.queueDepth(), { timeout: 20_000 }).toBe(0);
    await f.kill(second);
    expect(await h.queueDepth()).toBe(0);
    // None lost, and what the first UEP finished did not run again: once each, the one it was running twice.
    for (const t of [...before, ...after]) expect(f.runs(t.marker)).toBe(1);
    expect(f.runs(long.marker)).toBe(2);
    for (const t of all) expect(h.results.filter((r) => r.taskId === t.task.taskId)).toHaveLength(1);
    const came = h.logLines().find((l) => l.msg.startsWith("A batch of 9 tasks came back"));
    expect(came).toMatchObject({ finished: before.length });
    // Acked: its record is gone.
    expect(journalLines()).toEqual([]);
  });

  it("drops one cancelled task of a batch and still acks the batch once the rest finished", async () => {
    const { h } = f;
    const release = join(f.scratch, "release");
    const long = f.marking("long", release);
    const queued = f.marking("queued");
    const uep = h.start({ template: ONE_WORKER });
    await f.publishBatch([long.task, queued.task]);
    await expect.poll(() => existsSync(long.marker), { timeout: 30_000, interval: 50 }).toBe(true);
    await f.cancel(queued.task);
    await expect
      .poll(() => h.logLines().map((l) => l.msg), { timeout: 10_000 })
      .toContain(`Task ${queued.task.taskId} was cancelled before it started; dropped it`);
    writeFileSync(release, "");
    expect((await h.outcome(long.task)).state).toBe("success");
    await f.kill(uep);
    expect(existsSync(queued.marker)).toBe(false);
    expect(h.resultOf(queued.task.taskId)).toBeUndefined();
    expect(await h.queueDepth()).toBe(0);
  });
});
