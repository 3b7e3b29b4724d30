/**
 * Cancelled outcomes the Executor did not ask for: a `cancelled` result pushed
 * on the group's queue (another client of the group cancelled the task). Against
 * the stand-in service of helpers.ts and the real RabbitMQ; cancel() itself is
 * proven against the real service in executor.methods and executor.reload.
 */
import { describe, expect, it } from "vitest";
import { CancelledError } from "../src/errors.js";
import type { ResultEvent } from "../src/executor.js";
import { startFakeExecutor } from "./helpers.js";

describe("Executor and cancelled results", () => {
  it("rejects a future with CancelledError when its task's result on the queue says cancelled", async () => {
    const { ex, fake } = await startFakeExecutor();
    const events: ResultEvent[] = [];
    ex.on("result", (event) => events.push(event));
    const future = ex.submit((x: number) => x, 1);
    const other = ex.submit((x: number) => x, 2);
    await expect.poll(() => fake.submits().length, { timeout: 10_000 }).toBe(1);

    await fake.publish({
      taskId: future.taskId,
      state: "cancelled",
      error: {
        code: "TASK_CANCELLED",
        name: "Error",
        message: `Task ${future.taskId} was cancelled before it started.`,
      },
    });
    const err = await future.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CancelledError);
    expect(err).toMatchObject({ code: "TASK_CANCELLED", reason: "remote", taskId: future.taskId });
    expect((err as Error).message).toBe(
      `Task ${future.taskId} was cancelled before it started (by another client of its task group), so it never ran.`,
    );
    expect(events).toEqual([{ taskId: future.taskId, ok: false, error: err }]);

    // A cancel() after the future settled changes nothing and asks the service nothing.
    expect(await future.cancel()).toBe(false);
    expect(fake.requests.some((r) => r.path.endsWith("/cancel"))).toBe(false);
    await fake.publish({ taskId: other.taskId, state: "success", result: { strategy: "conduit.JSONData", data: "2" } });
    expect(await other).toBe(2);
  });
});
