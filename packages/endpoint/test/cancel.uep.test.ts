/**
 * `cancel` messages in a real UEP process (on the real RabbitMQ): a task the
 * UEP holds but has not handed to its engine (its only worker is busy) is
 * dropped and never reported, not even as running; a task whose cancel arrived
 * first is dropped when it comes. The service is played by the harness.
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ONE_WORKER, TaskQueueFixture } from "./user-endpoint.harness.js";

let f: TaskQueueFixture;
beforeEach(async () => {
  f = await new TaskQueueFixture().open();
});
afterEach(async () => {
  await f.close();
});

describe("UEP cancel messages", () => {
  it("drops a held task named by a cancel: never run, never reported; the running one finishes", async () => {
    const { h } = f;
    const release = join(f.scratch, "release");
    const long = f.marking("long", release);
    const queued = f.marking("queued");
    const after = f.marking("after");
    h.start({ template: ONE_WORKER });
    await h.publish(long.task, queued.task);
    await expect.poll(() => existsSync(long.marker), { timeout: 30_000, interval: 50 }).toBe(true);
    await f.cancel(queued.task);
    await expect
      .poll(() => h.logLines().map((l) => l.msg), { timeout: 10_000 })
      .toContain(`Task ${queued.task.taskId} was cancelled before it started; dropped it`);

    writeFileSync(release, "");
    await h.publish(after.task);
    await expect.poll(() => h.resultOf(after.task.taskId)?.state, { timeout: 30_000 }).toBe("success");
    expect(h.resultOf(long.task.taskId)?.state).toBe("success");
    expect(existsSync(after.marker)).toBe(true);
    expect(existsSync(queued.marker)).toBe(false);
    expect(h.resultOf(queued.task.taskId)).toBeUndefined();
    expect(h.arrivals).not.toContain(`running ${queued.task.taskId}`);
    expect(h.arrivals).toContain(`running ${long.task.taskId}`);
    // Every delivery was acked, the dropped one included.
    expect(await h.queueDepth()).toBe(0);
  });

  it("drops a task whose cancel arrived before it", async () => {
    const { h } = f;
    const early = f.marking("early");
    const plain = f.marking("plain");
    h.start({ template: ONE_WORKER });
    await f.cancel(early.task);
    await h.publish(early.task, plain.task);
    await expect.poll(() => h.resultOf(plain.task.taskId)?.state, { timeout: 30_000 }).toBe("success");
    expect(h.logLines().map((l) => l.msg)).toContain(
      `Task ${early.task.taskId} was cancelled; dropping it without running it`,
    );
    expect(existsSync(early.marker)).toBe(false);
    expect(h.resultOf(early.task.taskId)).toBeUndefined();
    expect(h.arrivals).not.toContain(`running ${early.task.taskId}`);
    expect(await h.queueDepth()).toBe(0);
  });
});
