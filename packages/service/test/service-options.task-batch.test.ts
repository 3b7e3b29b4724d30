/**
 * The task hop's batch bounds as service options (`--task-batch-count`,
 * `--task-batch-bytes`): their defaults, one sentence for a bad value, and a
 * service started with a count of 2 that sends a submit of 5 tasks as
 * messages of 2, 2 and 1 (in process, real RabbitMQ, Postgres).
 */
import { type SubmitResponse, type TaskBatchMessage, type TaskMessage, uepTaskQueue } from "@conduit/protocol";
import { describe, expect, it } from "vitest";
import { DEFAULT_TASK_BATCH_BYTES, DEFAULT_TASK_BATCH_COUNT } from "../src/broker/task-batches.js";
import { compileOptions } from "../src/service-options.js";
import { useApiService } from "./helpers/api-suite.js";
import { submitBody } from "./helpers/rest.js";

describe("task batch options", () => {
  it("default to 128 tasks and 1 MiB", () => {
    expect(compileOptions().taskBatch).toEqual({
      maxCount: DEFAULT_TASK_BATCH_COUNT,
      maxBytes: DEFAULT_TASK_BATCH_BYTES,
    });
    expect(DEFAULT_TASK_BATCH_COUNT).toBe(128);
    expect(DEFAULT_TASK_BATCH_BYTES).toBe(1024 * 1024);
    expect(compileOptions({ taskBatchCount: 1, taskBatchBytes: 4096 }).taskBatch).toEqual({
      maxCount: 1,
      maxBytes: 4096,
    });
  });

  it("refuse a bad value with one sentence naming the flag", () => {
    expect(() => compileOptions({ taskBatchCount: 0 })).toThrow(
      "taskBatchCount must be a whole number of tasks from 1 to 10000 (--task-batch-count); got 0.",
    );
    expect(() => compileOptions({ taskBatchCount: 2.5 })).toThrow("(--task-batch-count); got 2.5.");
    expect(() => compileOptions({ taskBatchBytes: 100 })).toThrow(
      "taskBatchBytes must be a whole number of bytes from 1024 to 16777216 (--task-batch-bytes); got 100.",
    );
    expect(() => compileOptions({ taskBatchBytes: 32 * 1024 * 1024 })).toThrow("(--task-batch-bytes)");
  });
});

describe("a service started with taskBatchCount 2", () => {
  const api = useApiService("postgres", { taskBatchCount: 2 });

  it("sends a submit of 5 tasks to the UEP as messages of 2, 2 and 1 tasks, in order", async () => {
    const endpointId = await api.registerEndpoint();
    const functionId = await api.registerFunction(`(x) => x + ${Math.random()}`);
    const body = submitBody(functionId, 5);
    const r = await api.call<SubmitResponse>("POST", `/v1/endpoints/${endpointId}/submit`, { body });
    expect(r.status).toBe(200);
    const queue = uepTaskQueue(endpointId, r.body.uep_id);
    const sizes: number[] = [];
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const m = await api.take<TaskBatchMessage | TaskMessage>(queue);
      const tasks = m.kind === "tasks" ? m.tasks : [m];
      sizes.push(tasks.length);
      ids.push(...tasks.map((t) => t.taskId));
    }
    expect(sizes).toEqual([2, 2, 1]);
    expect(ids).toEqual(body.tasks.map((t) => t.task_id));
    expect(await api.queueLength(queue)).toBe(0);
  });
});
