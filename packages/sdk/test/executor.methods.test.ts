/**
 * The Executor's methods and events against the real service and endpoint
 * (child processes, PGlite, a RabbitMQ vhost of their own).
 */
import { TaskExecutionFailed } from "@conduit/protocol";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { BundledCode } from "../src/bundled-code.js";
import { CancelledError } from "../src/errors.js";
import { Executor, type ProgressEvent, type ResultEvent } from "../src/executor.js";
import type { ExecutorOptions } from "../src/executor-options.js";
import { startTestStack, type TestStack } from "./stack.helpers.js";

let env: TestStack;
const open: Executor[] = [];

beforeAll(async () => {
  env = await startTestStack();
}, 120_000);

afterEach(async () => {
  for (const ex of open.splice(0)) await ex.shutdown({ cancelFutures: true });
});

afterAll(async () => {
  await env?.stop();
});

function executor(options: Partial<ExecutorOptions> = {}): Executor {
  const ex = new Executor({ endpointId: env.endpointId, client: env.client, ...options });
  open.push(ex);
  return ex;
}

describe("Executor methods against the real service and endpoint", () => {
  it("runs a function, a BundledCode and a registered function; each payload is registered once", async () => {
    const ex = executor();
    const add = (a: number, b: number) => a + b;
    const triple = BundledCode.from(new URL("./fixtures/executor-bundle.mjs", import.meta.url), "triple");

    const [addId, addAgain, tripleId] = await Promise.all([
      ex.registerFunction(add),
      ex.registerFunction(add),
      ex.registerFunction(triple),
    ]);
    expect(addAgain).toBe(addId);
    expect(tripleId).not.toBe(addId);
    // Submitting the same payloads reuses the registrations: the service knows them under these ids.
    expect(
      await ex.registerFunction(BundledCode.from(new URL("./fixtures/executor-bundle.mjs", import.meta.url), "triple")),
    ).toBe(tripleId);

    const viaFunction = ex.submit(add, 30, 12);
    const viaBundle = ex.submit<number>(triple, 14);
    const viaId = ex.submitToRegisteredFunction<number>(addId, 40, 2);
    expect(await Promise.all([viaFunction, viaBundle, viaId])).toEqual([42, 42, 42]);
    const task = await env.client.getTask(viaId.taskId);
    expect(task.function_id).toBe(addId);
    expect((await env.client.getTask(viaFunction.taskId)).function_id).toBe(addId);
  }, 60_000);

  it("sends StructuredData by default and JSONData when asked, and results come back in kind", async () => {
    const structured = executor();
    const keys = (m: Map<string, Date>) => new Map([...m].map(([k, d]) => [k, d.getUTCFullYear()]));
    const input = new Map([["a", new Date(Date.UTC(2024, 0, 1))]]);
    expect(await structured.submit(keys, input)).toEqual(new Map([["a", 2024]]));

    const json = executor({ serializer: "conduit.JSONData" });
    const refused = await json
      .submit(keys, input)
      .result()
      .catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: "SERIALIZATION_FAILED" });
    expect(await json.submit((o: { n: number }) => o.n + 1, { n: 1 })).toBe(2);
  }, 60_000);

  it("map yields results in input order, and rejects at the first failed task", async () => {
    const ex = executor();
    // Later items finish first, so order comes from the Executor, not from arrival.
    const slowFirst = async (n: number) => {
      await new Promise((resolve) => setTimeout(resolve, (5 - n) * 30));
      return n * n;
    };
    const results: number[] = [];
    for await (const value of ex.map(slowFirst, [1, 2, 3, 4])) results.push(value);
    expect(results).toEqual([1, 4, 9, 16]);

    const failAtTwo = (n: number) => {
      if (n === 2) throw new RangeError(`no ${n}`);
      return n;
    };
    const seen: number[] = [];
    const err = await (async () => {
      for await (const value of ex.map(failAtTwo, [1, 2, 3])) seen.push(value);
    })().catch((e: unknown) => e);
    expect(seen).toEqual([1]);
    expect(err).toBeInstanceOf(TaskExecutionFailed);
    expect(err).toMatchObject({ name: "RangeError", message: "no 2" });
  }, 60_000);

  it("emits one result event per task and progress counts that end with nothing pending", async () => {
    const ex = executor();
    const events: ResultEvent[] = [];
    const progress: ProgressEvent[] = [];
    ex.on("result", (event) => events.push(event));
    ex.on("progress", (event) => progress.push(event));
    const check = (n: number) => {
      if (n % 4 === 0) throw new Error(`bad ${n}`);
      return n;
    };
    const futures = Array.from({ length: 20 }, (_, n) => ex.submit(check, n));
    await Promise.allSettled(futures.map((f) => f.result()));

    expect(events).toHaveLength(20);
    expect(new Set(events.map((e) => e.taskId))).toEqual(new Set(futures.map((f) => f.taskId)));
    for (const [n, future] of futures.entries()) {
      const event = events.find((e) => e.taskId === future.taskId);
      if (n % 4 === 0) expect(event).toMatchObject({ ok: false, error: { message: `bad ${n}` } });
      else expect(event).toEqual({ taskId: future.taskId, ok: true, value: n });
    }
    expect(progress.at(-1)).toEqual({ submitted: 20, done: 20, failed: 5, pending: 0 });
    // Counts only grow, and pending is always submitted - done.
    for (const [i, p] of progress.entries()) {
      expect(p.pending).toBe(p.submitted - p.done);
      if (i > 0) expect(p.done).toBeGreaterThanOrEqual(progress[i - 1].done);
    }
  }, 60_000);

  it("cancel() of a task still queued in the Executor: true, never sent", async () => {
    const ex = executor();
    const future = ex.submit((x: number) => x, 1);
    expect(await future.cancel()).toBe(true);
    const err = await future.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CancelledError);
    expect((err as Error).message).toBe(
      `Task ${future.taskId} was cancelled by future.cancel() before it started, so it never ran.`,
    );
    await expect(env.client.getTask(future.taskId)).rejects.toMatchObject({ statusCode: 404 });
    expect(await future.cancel()).toBe(false); // settled already
  }, 60_000);

  it("cancel() of a running task: false, the future rejects at once, the result is discarded", async () => {
    const ex = executor();
    const events: ResultEvent[] = [];
    ex.on("result", (event) => events.push(event));
    const slow = async () => {
      await new Promise((resolve) => setTimeout(resolve, 4000));
      return "finished";
    };
    const future = ex.submit(slow);
    await expect.poll(async () => (await env.client.getTask(future.taskId)).state, { timeout: 30_000 }).toBe("running");

    expect(await future.cancel()).toBe(false);
    const err = await future.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CancelledError);
    expect(err).toMatchObject({ code: "TASK_CANCELLED", reason: "running" });
    // The task finishes on the endpoint; its result reaches the Executor and is dropped.
    await expect.poll(async () => (await env.client.getTask(future.taskId)).state, { timeout: 30_000 }).toBe("success");
    await ex.shutdown();
    expect(events).toEqual([{ taskId: future.taskId, ok: false, error: err }]);
  }, 60_000);
});
