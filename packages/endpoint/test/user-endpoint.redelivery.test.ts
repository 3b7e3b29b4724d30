import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { UepHarness } from "./user-endpoint.harness.js";

const WAIT = { timeout: 30_000, interval: 50 };

describe("user endpoint process: nothing lost", () => {
  let h: UepHarness;
  beforeEach(async () => {
    h = await new UepHarness().open();
  });
  afterEach(async () => {
    await h.close();
  });

  it("a task whose UEP was killed -9 mid-task runs on the next UEP of the same queue", async () => {
    const task = h.task({
      source: "async (ms) => { await new Promise((r) => setTimeout(r, ms)); return 'slept'; }",
      args: [2000],
    });
    await h.publish(task);
    const first = h.start();
    await expect.poll(() => h.statuses.flatMap((s) => s.taskIds), WAIT).toContain(task.taskId);
    first.child.kill("SIGKILL");
    expect((await first.exit).signal).toBe("SIGKILL");
    expect(h.resultOf(task.taskId)).toBeUndefined();

    const second = h.start();
    await expect.poll(() => h.resultOf(task.taskId), WAIT).toMatchObject({ state: "success" });
    expect(h.resultOf(task.taskId)!.result!.data).toBe('"slept"');
    second.child.kill("SIGTERM");
    expect((await second.exit).code).toBe(0);
    expect(h.results.filter((r) => r.taskId === task.taskId)).toHaveLength(1);
    expect(await h.queueDepth()).toBe(0);
  });
});
