import { PayloadTooLargeError, payloadBytes, SOURCE_CODE } from "@conduit/protocol";
import { describe, expect, it } from "vitest";
import type { ExecutorOptions } from "../src/executor-options.js";
import { serializeArguments } from "../src/serialize.js";
import { type FakeService, startFakeExecutor } from "./helpers.js";

const setup = (options: Partial<ExecutorOptions> = {}) => startFakeExecutor(options, { echo: true });

function sentTaskIds(fake: FakeService): string[] {
  return fake.submits().flatMap((s) => s.tasks.map((t) => t.task_id));
}

describe("Executor batching", () => {
  it("sends 1000 submits in 8 requests with one function registration, and every result comes back", async () => {
    const { ex, fake } = await setup();
    const add = (a: number, b: number) => a + b;
    const futures = Array.from({ length: 1000 }, (_, i) => ex.submit(add, i, 1));

    const values = await Promise.all(futures.map((f) => f.result()));
    expect(values).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));

    const submits = fake.submits();
    expect(submits).toHaveLength(8); // ceil(1000 / 128)
    expect(submits.every((s) => s.tasks.length <= 128)).toBe(true);
    expect(sentTaskIds(fake).sort()).toEqual(futures.map((f) => f.taskId).sort());
    expect(fake.functionRegistrations()).toHaveLength(1);
    // The first request creates the task group; every later one joins it.
    expect(submits[0].task_group_id).toBeUndefined();
    expect(submits.slice(1).every((s) => s.task_group_id === fake.taskGroupId)).toBe(true);
    expect(ex.taskGroupId).toBe(fake.taskGroupId);

    await ex.shutdown();
    expect(await fake.queueStats()).toEqual({ messageCount: 0, consumerCount: 0 });
  });

  it("splits a batch so that every request stays under maxRequestBytes", async () => {
    const { ex, fake } = await setup({ maxRequestBytes: 20_000, maxTaskBytes: 5_000 });
    const echo = (s: string) => s.length;
    const futures = Array.from({ length: 60 }, (_, i) => ex.submit(echo, String(i).padEnd(1000, "x")));

    expect(await Promise.all(futures.map((f) => f.result()))).toEqual(futures.map(() => 1000));
    const sizes = fake.requests.filter((r) => r.path.endsWith("/submit")).map((r) => r.bytes);
    expect(sizes.length).toBeGreaterThanOrEqual(4); // ~60 kB of tasks
    expect(Math.max(...sizes)).toBeLessThanOrEqual(20_000);
    expect(sentTaskIds(fake).sort()).toEqual(futures.map((f) => f.taskId).sort());
  });

  it("refuses a task over maxTaskBytes with its size and the limit, before uploading anything", async () => {
    const { ex, fake } = await setup({ maxTaskBytes: 1_000 });
    const measure = (s: string) => s.length;
    const big = "y".repeat(2_000);
    const future = ex.submit(measure, big);

    const size =
      payloadBytes({ strategy: SOURCE_CODE, data: "(s) => s.length" }) + payloadBytes(serializeArguments([big]));
    const err = await future.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PayloadTooLargeError);
    expect((err as Error).message).toBe(
      `Task ${future.taskId} (function and arguments) is ${size} bytes, over the limit of 1000 bytes; send less data per task (e.g. pass a path or URL instead of the data) or raise the limit.`,
    );
    await new Promise((resolve) => setImmediate(resolve));
    expect(fake.requests).toEqual([]);

    // A small task beside it goes through; the big one never reaches the service.
    expect(await ex.submit(measure, "small")).toBe(5);
    expect(sentTaskIds(fake)).not.toContain(future.taskId);
  });

  it("registers each source text once, across closures and submits that overlap a registration", async () => {
    const { ex, fake } = await setup();
    const makeDouble = () => (x: number) => x * 2;
    const first = ex.submit(makeDouble(), 1);
    const second = ex.submit(makeDouble(), 2); // another function object, the same text
    await expect.poll(() => fake.functionRegistrations().length).toBe(1);
    const third = ex.submit(makeDouble(), 3); // the registration may still be in flight
    const other = ex.submit((x: number) => x + 1, 41);

    expect(await Promise.all([first, second, third, other])).toEqual([2, 4, 6, 42]);
    expect(fake.functionRegistrations().map((r) => (r.body as { function: { data: string } }).function.data)).toEqual([
      "(x) => x * 2",
      "(x) => x + 1",
    ]);
  });
});
