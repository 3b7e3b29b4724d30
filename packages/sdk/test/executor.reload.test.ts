/**
 * `reload()` and `cancel()` of tasks that have not started, against the real
 * service and endpoint. The endpoint is stopped while tasks are submitted, so
 * "not started" and "finished while the submitter was away" are arranged, not
 * raced.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEndpoint } from "../../../scripts/local-stack.mjs";
import { CancelledError } from "../src/errors.js";
import { Executor } from "../src/executor.js";
import type { TaskFuture } from "../src/task-future.js";
import { startTestStack, type TestStack } from "./stack.helpers.js";

let env: TestStack;
let endpoint: { stop(): Promise<void> } | undefined;
const scratch = mkdtempSync(join(tmpdir(), "conduit-reload-"));

beforeAll(async () => {
  env = await startTestStack();
}, 120_000);

afterAll(async () => {
  await endpoint?.stop();
  await env?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

/** Resolves once the service has stored every task (the submit was accepted). */
async function accepted(futures: Array<TaskFuture<unknown>>): Promise<void> {
  for (const future of futures) {
    await expect
      .poll(
        () =>
          env.client.getTask(future.taskId).then(
            () => true,
            () => false,
          ),
        { timeout: 20_000 },
      )
      .toBe(true);
  }
}

describe("Executor.reload and cancel of unstarted tasks", () => {
  it("cancel() of a task the endpoint has not started: true, state cancelled, the future rejects", async () => {
    await env.stack.endpoint.stop();
    await using ex = new Executor({ endpointId: env.endpointId, client: env.client });
    const future = ex.submit((x: number) => x, 1);
    await accepted([future]);

    expect(await future.cancel()).toBe(true);
    const err = await future.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CancelledError);
    expect(err).toMatchObject({ code: "TASK_CANCELLED", reason: "not-started" });
    expect((await env.client.getTask(future.taskId)).state).toBe("cancelled");
  }, 60_000);

  it("re-attaches a new Executor to a group: pending tasks get futures, finished ones settle from the queue", async () => {
    // Submitted while the endpoint is down, by a process that then goes away.
    const first = new Executor({ endpointId: env.endpointId, client: env.client });
    const times10 = (x: number) => x * 10;
    const waitFor = async (path: string) => {
      const fs = await import("node:fs");
      while (!fs.existsSync(path)) await new Promise((resolve) => setTimeout(resolve, 50));
      return "released";
    };
    const quick = [1, 2, 3, 4].map((n) => first.submit(times10, n));
    const failing = first.submit((n: number) => {
      throw new Error(`failed ${n}`);
    }, 5);
    const release = join(scratch, "release");
    // One worker, tasks in order: the others finish, then this one holds the worker.
    const held = first.submit(waitFor, release);
    await accepted([...quick, held, failing]);
    const taskGroupId = first.taskGroupId;
    expect(taskGroupId).toBeDefined();
    await first.shutdown({ cancelFutures: true });

    const started = await startEndpoint({ env: env.stack.env, name: "sdk_tests" });
    endpoint = started;
    expect(started.endpointId).toBe(env.endpointId);
    for (const future of quick) {
      await expect
        .poll(async () => (await env.client.getTask(future.taskId)).state, { timeout: 30_000 })
        .toBe("success");
    }
    await expect.poll(async () => (await env.client.getTask(held.taskId)).state, { timeout: 30_000 }).toBe("running");

    const second = new Executor({ endpointId: env.endpointId, client: env.client, taskGroupId });
    const results: string[] = [];
    second.on("result", (event) => results.push(event.taskId));
    const futures = await second.reload();
    const byId = new Map(futures.map((f) => [f.taskId, f]));
    expect(new Set(byId.keys())).toEqual(new Set([...quick, held, failing].map((f) => f.taskId)));

    // What finished while nobody listened is settled by the time reload() resolves.
    const settled = new Set<string>();
    for (const future of futures)
      future.then(
        () => settled.add(future.taskId),
        () => settled.add(future.taskId),
      );
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toEqual(new Set([...quick, failing].map((f) => f.taskId)));
    expect(await Promise.all(quick.map((f) => byId.get(f.taskId)))).toEqual([10, 20, 30, 40]);
    expect(
      await byId
        .get(failing.taskId)
        ?.result()
        .catch((e: unknown) => e),
    ).toMatchObject({ message: "failed 5" });

    expect(existsSync(release)).toBe(false);
    writeFileSync(release, "");
    expect(await byId.get(held.taskId)).toBe("released");
    await second.shutdown();
    expect(results.sort()).toEqual([...byId.keys()].sort());
  }, 90_000);

  it("reload() without a task group says how to name one", async () => {
    const ex = new Executor({ endpointId: env.endpointId, client: env.client });
    await expect(ex.reload()).rejects.toThrow(
      "reload() needs a task group to re-attach to; pass taskGroupId (executor.taskGroupId of the earlier run) to the Executor.",
    );
    await ex.shutdown();
  });
});
