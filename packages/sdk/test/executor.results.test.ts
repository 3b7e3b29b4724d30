import { randomUUID } from "node:crypto";
import { JSON_DATA, TaskExecutionFailed } from "@conduit/protocol";
import { describe, expect, it } from "vitest";
import { ConduitApiError, FutureCancelledError } from "../src/errors.js";
import { type FakeService, type FakeServiceOptions, startFakeExecutor } from "./helpers.js";

const setup = (options: FakeServiceOptions = {}, taskGroupId?: (fake: FakeService) => string) =>
  startFakeExecutor((fake) => ({ endpointId: "ep-results", taskGroupId: taskGroupId?.(fake) }), options);

const json = (value: unknown) => ({ strategy: JSON_DATA, data: JSON.stringify(value) });

describe("Executor results over RabbitMQ", () => {
  it("settles futures from pushed results: a value, and a remote TypeError with its stack", async () => {
    const { ex, fake } = await setup();
    const f = (x: { a: number }) => x.a;
    const ok = ex.submit(f, { a: 42 });
    const bad = ex.submit(f, { a: 0 });
    await expect.poll(() => fake.submits().length, { timeout: 10_000 }).toBe(1);

    const remoteStack = "TypeError: Cannot read properties of undefined (reading 'a')\n    at f (worker:1:20)";
    await fake.publish({ taskId: ok.taskId, state: "success", result: json(42) });
    await fake.publish({
      taskId: bad.taskId,
      state: "failed",
      error: {
        code: "TASK_EXCEPTION",
        name: "TypeError",
        message: "Cannot read properties of undefined (reading 'a')",
        stack: remoteStack,
      },
    });

    expect(await ok).toBe(42);
    expect(await ok.result()).toBe(42);
    const err = await bad.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskExecutionFailed);
    expect(err).toMatchObject({
      name: "TypeError",
      code: "TASK_EXCEPTION",
      message: "Cannot read properties of undefined (reading 'a')",
      stack: remoteStack,
    });
  });

  it("acks and drops results for unknown and already settled tasks", async () => {
    const { ex, fake } = await setup();
    const first = ex.submit((x: number) => x, 1);
    const second = ex.submit((x: number) => x, 2);
    await expect.poll(() => fake.submits().length, { timeout: 10_000 }).toBe(1);

    await fake.publish({ taskId: first.taskId, state: "success", result: json(1) });
    expect(await first).toBe(1);
    await fake.publish({ taskId: first.taskId, state: "success", result: json(99) }); // a redelivery
    await fake.publish({ taskId: randomUUID(), state: "success", result: json(7) }); // not ours
    await fake.publish({ taskId: second.taskId, state: "success", result: json(2) });
    expect(await second).toBe(2);
    expect(await first).toBe(1);

    await ex.shutdown();
    // Nothing left unacked (it would be back in the queue) and no consumer left behind.
    expect(await fake.queueStats()).toEqual({ messageCount: 0, consumerCount: 0 });
  });

  it("settles several futures from one results message, dropping duplicates and unknown tasks", async () => {
    const { ex, fake } = await setup();
    const futures = [1, 2, 3].map((n) => ex.submit((x: number) => x, n));
    await expect.poll(() => fake.submits().length, { timeout: 10_000 }).toBe(1);
    const [one, two, three] = futures.map((f) => f.taskId) as [string, string, string];

    await fake.publishBatch([
      { taskId: one, state: "success", result: json(1) },
      { taskId: one, state: "success", result: json(99) }, // a duplicate within the message
      { taskId: randomUUID(), state: "success", result: json(7) }, // not ours
      { taskId: two, state: "failed", error: { code: "TASK_EXCEPTION", name: "Error", message: "two failed" } },
    ]);
    expect(await futures[0]).toBe(1);
    expect(await futures[1]?.result().catch((e: unknown) => e)).toMatchObject({ message: "two failed" });
    // A later message repeating a settled task changes nothing; the rest still settle.
    await fake.publishBatch([
      { taskId: two, state: "success", result: json(2) },
      { taskId: three, state: "success", result: json(3) },
    ]);
    expect(await futures[2]).toBe(3);
    expect(await futures[0]).toBe(1);
    expect(await futures[1]?.result().catch((e: unknown) => e)).toBeInstanceOf(TaskExecutionFailed);

    await ex.shutdown();
    expect(await fake.queueStats()).toEqual({ messageCount: 0, consumerCount: 0 });
  });

  it("shutdown waits for pending futures, then closes; later submits are refused", async () => {
    const { ex, fake } = await setup();
    const future = ex.submit((x: number) => x * 2, 21);
    await expect.poll(() => fake.submits().length, { timeout: 10_000 }).toBe(1);
    let settled = false;
    void future.then(() => {
      settled = true;
    });

    const shutdown = ex.shutdown();
    await fake.publish({ taskId: future.taskId, state: "success", result: json(42) });
    await shutdown;
    expect(settled).toBe(true);
    expect(await future).toBe(42);
    expect(await fake.queueStats()).toEqual({ messageCount: 0, consumerCount: 0 });
    expect(() => ex.submit((x: number) => x, 1)).toThrow(
      "This Executor is shut down; create a new Executor to submit more tasks.",
    );
  });

  it("shutdown with cancelFutures rejects what is still pending", async () => {
    const { ex, fake } = await setup();
    const sent = ex.submit((x: number) => x, 1);
    await expect.poll(() => fake.submits().length, { timeout: 10_000 }).toBe(1);
    const queued = ex.submit((x: number) => x, 2);

    await ex.shutdown({ cancelFutures: true });
    for (const future of [sent, queued]) {
      const err = await future.result().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FutureCancelledError);
      expect((err as Error).message).toBe(
        `Task ${future.taskId} was cancelled by Executor.shutdown({ cancelFutures: true }); if it was already submitted, fetch its result with client.getResult("${future.taskId}").`,
      );
    }
    expect(fake.submits()).toHaveLength(1); // the queued task was never sent
  });

  it("rejects the futures of a refused submit with the service's sentence", async () => {
    const message = "Function f not permitted on endpoint ep-results.";
    const { ex } = await setup({
      refuseSubmit: () => ({ statusCode: 403, code: "FUNCTION_NOT_PERMITTED", error: "Forbidden", message }),
    });
    const futures = [ex.submit((x: number) => x, 1), ex.submit((x: number) => x, 2)];
    for (const future of futures) {
      const err = await future.result().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConduitApiError);
      expect(err).toMatchObject({ code: "FUNCTION_NOT_PERMITTED", statusCode: 403, message });
    }
  });

  it("rejects the futures of submitted tasks when the broker named by the service is unreachable", async () => {
    const { ex } = await setup({ amqpUrl: "amqp://guest:secret@127.0.0.1:1" });
    const err = await ex
      .submit((x: number) => x, 1)
      .result()
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "BROKER_UNREACHABLE" });
    expect((err as Error).message).toMatch(
      /^Cannot connect to RabbitMQ at amqp:\/\/guest:\*\*\*@127.0.0.1:1 .*; start it \(rabbitmq-server -detached\) or pass the right AMQP URL\.$/,
    );
  });

  it("re-attaches to a known task group from the first request on", async () => {
    const { ex, fake } = await setup({ echo: true }, (f) => f.taskGroupId);
    expect(ex.taskGroupId).toBe(fake.taskGroupId);
    expect(await ex.submit((a: number, b: number) => a + b, 30, 12)).toBe(42);
    expect(fake.submits()[0].task_group_id).toBe(fake.taskGroupId);
    await ex[Symbol.asyncDispose]();
    expect(await fake.queueStats()).toEqual({ messageCount: 0, consumerCount: 0 });
  });
});
