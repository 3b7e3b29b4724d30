/**
 * The routes for deletes, cancel and task groups, in-process (`startService`,
 * PGlite) with the real RabbitMQ on a vhost of its own. The test plays the
 * endpoint's part (UEP) with its own amqplib channel: it reads the UEP's queue
 * and publishes running reports and results as a UEP would.
 */
import { randomUUID } from "node:crypto";
import {
  type CancelTaskResponse,
  type EndpointInfo,
  JSON_DATA,
  RESULTS_EXCHANGE,
  type ResultBatchMessage,
  type ResultMessage,
  resultsRoutingKey,
  type SubmitRequest,
  type SubmitResponse,
  type TaskGroupDetail,
  type TaskGroupInfo,
  type TaskStatusResponse,
  taskGroupBrokerUser,
  taskGroupResultQueue,
  uepTaskQueue,
} from "@conduit/protocol";
import type { Channel } from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningService } from "../src/index.js";
import { openChannel } from "./helpers/broker.js";
import { restHelpers, submitBody } from "./helpers/rest.js";
import { startTestService } from "./helpers/service.js";

const disposers: Array<() => Promise<void>> = [];
let service: RunningService;
let channel: Channel;
let token: string;
let bobToken: string;

beforeAll(async () => {
  const started = await startTestService();
  disposers.push(started.dispose);
  service = started.value;
  token = service.adminToken;
  bobToken = (await service.createIdentity("bob@example.org")).token;
  const ch = await openChannel(started.amqpUrl);
  disposers.push(() => ch.close());
  channel = ch.channel;
});

afterAll(async () => {
  await rest.closeEndpointLinks();
  for (const dispose of disposers.reverse()) await dispose();
});

const rest = restHelpers(() => ({ url: service.url, token }));
const { call, registerFunction, asEndpoint } = rest;

/** Also checks that the message is one sentence naming the problem and the fix. */
function expectError(r: { status: number; body: unknown }, status: number, code: string): string {
  const { message } = rest.expectError(r, status, code);
  expect(message).toMatch(/^[A-Z].*[.;].*\.$/);
  return message;
}

function registerEndpoint(as = token, body: Record<string, unknown> = {}): Promise<string> {
  return rest.registerEndpoint(body, as);
}

async function submit(endpointId: string, body: SubmitRequest, as = token): Promise<SubmitResponse> {
  const r = await call<SubmitResponse>("POST", `/v1/endpoints/${endpointId}/submit`, { token: as, body });
  expect(r.status).toBe(200);
  return r.body;
}

/** Takes messages from a queue until `n` arrived (a `results` message counts each of its results). */
async function take<T extends { kind: string }>(queue: string, n = 1): Promise<T[]> {
  const got: T[] = [];
  await expect
    .poll(
      async () => {
        for (;;) {
          const msg = await channel.get(queue, { noAck: true });
          if (!msg) break;
          const m = JSON.parse(msg.content.toString()) as T | ResultBatchMessage;
          if (m.kind === "results") got.push(...((m as ResultBatchMessage).results as unknown as T[]));
          else got.push(m as T);
        }
        return got.length >= n;
      },
      { timeout: 10_000, interval: 50 },
    )
    .toBe(true);
  return got;
}

async function taskState(taskId: string): Promise<TaskStatusResponse> {
  const r = await call<TaskStatusResponse>("GET", `/v1/tasks/${taskId}`);
  expect(r.status).toBe(200);
  return r.body;
}

describe("routes: malformed ids and the OpenAPI document", () => {
  it("answers 400 naming the field for a malformed UUID on every new route", async () => {
    for (const [method, path] of [
      ["GET", "/v1/endpoints/nope"],
      ["DELETE", "/v1/endpoints/nope"],
      ["DELETE", "/v1/functions/nope"],
      ["POST", "/v1/tasks/nope/cancel"],
      ["GET", "/v1/task_groups/nope"],
    ] as const) {
      const message = expectError(await call(method, path), 400, "INVALID_REQUEST");
      expect(message).toMatch(/^Invalid request: params\.\w+_id must be a UUID; fix that field/);
    }
  });

  it("documents each new route with its schema in /openapi.json", async () => {
    const doc = await call<{
      paths: Record<string, Record<string, { responses: Record<string, unknown>; parameters?: unknown[] }>>;
    }>("GET", "/openapi.json");
    expect(doc.body.paths["/v1/tasks/{task_id}/cancel"]?.post?.responses["200"]).toBeDefined();
    expect(doc.body.paths["/v1/task_groups/{task_group_id}"]?.get?.responses["200"]).toBeDefined();
    expect(doc.body.paths["/v1/endpoints/{endpoint_id}"]?.delete?.parameters).toContainEqual(
      expect.objectContaining({ in: "query", name: "force" }),
    );
  });

  it("refuses a resource_specification that is not a JSON object with 400", async () => {
    const endpointId = await registerEndpoint();
    const functionId = await registerFunction();
    for (const spec of [["num_nodes"], "num_nodes=2", 3]) {
      const r = await call("POST", `/v1/endpoints/${endpointId}/submit`, {
        body: { ...submitBody(functionId), resource_specification: spec },
      });
      const message = expectError(r, 400, "INVALID_REQUEST");
      expect(message).toContain("body.resource_specification must be of type object or null");
    }
    const ok = await submit(endpointId, submitBody(functionId, 1, { resource_specification: { num_ranks: 2 } }));
    const [task] = await take<{ kind: string; resourceSpecification?: unknown }>(
      uepTaskQueue(endpointId, ok.uep_id),
      1,
    );
    expect(task?.resourceSpecification).toEqual({ num_ranks: 2 });
  });
});

describe("DELETE /v1/functions/:id", () => {
  it("lets only the owner delete; later submits (even with the function cached) get 404 FUNCTION_NOT_FOUND", async () => {
    const endpointId = await registerEndpoint();
    const functionId = await registerFunction();
    // A submit puts the function in the submitter's cache.
    await submit(endpointId, submitBody(functionId));

    const notOwner = expectError(
      await call("DELETE", `/v1/functions/${functionId}`, { token: bobToken }),
      403,
      "FUNCTION_NOT_OWNED",
    );
    expect(notOwner).toContain(functionId);

    expect(await call("DELETE", `/v1/functions/${functionId}`)).toEqual({
      status: 200,
      body: { id: functionId, deleted: true },
    });
    expectError(await call("GET", `/v1/functions/${functionId}`), 404, "FUNCTION_NOT_FOUND");
    const r = await call("POST", `/v1/endpoints/${endpointId}/submit`, { body: submitBody(functionId) });
    expectError(r, 404, "FUNCTION_NOT_FOUND");
    expectError(await call("DELETE", `/v1/functions/${functionId}`), 404, "FUNCTION_NOT_FOUND");
  });
});

describe("GET and DELETE /v1/endpoints/:id", () => {
  it("shows one's own and multi-user endpoints; another's single-user endpoint is 403, an unknown one 404", async () => {
    const own = await registerEndpoint(token, { name: "mine", display_name: "Mine" });
    const r = await call<EndpointInfo>("GET", `/v1/endpoints/${own}`);
    expect(r).toEqual({
      status: 200,
      body: {
        endpoint_id: own,
        name: "mine",
        display_name: "Mine",
        owner: "admin@localhost",
        multi_user: false,
        high_assurance: false,
        status: "offline",
        last_heartbeat: null,
      },
    });
    expectError(await call("GET", `/v1/endpoints/${own}`, { token: bobToken }), 403, "ENDPOINT_NOT_PERMITTED");
    const shared = await registerEndpoint(token, { name: "shared", multi_user: true });
    expect((await call<EndpointInfo>("GET", `/v1/endpoints/${shared}`, { token: bobToken })).body.name).toBe("shared");
    expectError(await call("GET", `/v1/endpoints/${randomUUID()}`), 404, "ENDPOINT_NOT_FOUND");
  });

  it("refuses another owner (403) and unfinished tasks (409); force fails them and tells their group; history stays", async () => {
    const endpointId = await registerEndpoint();
    const ep = await asEndpoint(endpointId);
    const functionId = await registerFunction();
    const done = await submit(endpointId, submitBody(functionId));
    const [doneId] = done.task_ids as [string];
    // Play the UEP: finish the first task.
    await ep.publish(
      RESULTS_EXCHANGE,
      resultsRoutingKey(endpointId),
      Buffer.from(
        JSON.stringify({
          v: 1,
          kind: "result",
          taskId: doneId,
          endpointId,
          uepId: done.uep_id,
          state: "success",
          result: { strategy: JSON_DATA, data: "1" },
          completedAt: Date.now(),
        } satisfies ResultMessage),
      ),
    );
    await take<ResultMessage>(done.result_queue, 1);
    const pending = await submit(endpointId, submitBody(functionId, 2));

    expectError(await call("DELETE", `/v1/endpoints/${endpointId}`, { token: bobToken }), 403, "ENDPOINT_NOT_OWNED");
    const busy = expectError(await call("DELETE", `/v1/endpoints/${endpointId}`), 409, "ENDPOINT_HAS_TASKS");
    expect(busy).toContain("2 tasks not yet finished");
    expect(busy).toContain("?force=true");
    expect((await call<EndpointInfo>("GET", `/v1/endpoints/${endpointId}`)).status).toBe(200);

    expect(await call("DELETE", `/v1/endpoints/${endpointId}?force=true`)).toEqual({
      status: 200,
      body: { id: endpointId, deleted: true },
    });
    expectError(await call("GET", `/v1/endpoints/${endpointId}`), 404, "ENDPOINT_NOT_FOUND");
    expect((await call<EndpointInfo[]>("GET", "/v1/endpoints")).body.map((e) => e.endpoint_id)).not.toContain(
      endpointId,
    );
    const told = await take<ResultMessage>(pending.result_queue, 2);
    expect(told.map((m) => m.taskId).sort()).toEqual([...pending.task_ids].sort());
    for (const m of told) {
      expect(m).toMatchObject({ state: "failed", error: { code: "ENDPOINT_DELETED" } });
    }
    for (const id of pending.task_ids) expect((await taskState(id)).state).toBe("failed");
    // History stays: the finished task keeps its result.
    expect(await taskState(doneId)).toMatchObject({ state: "success", result: { data: "1" } });
    // New submits to it are 404.
    const r = await call("POST", `/v1/endpoints/${endpointId}/submit`, { body: submitBody(functionId) });
    expectError(r, 404, "ENDPOINT_NOT_FOUND");
  });
});

describe("POST /v1/tasks/:id/cancel", () => {
  it("cancels a task that has not started: cancel message after it in the UEP queue, cancelled result to its group", async () => {
    const endpointId = await registerEndpoint();
    const ep = await asEndpoint(endpointId);
    const functionId = await registerFunction();
    const s = await submit(endpointId, submitBody(functionId, 2));
    const [victim, other] = s.task_ids as [string, string];
    expect((await taskState(victim)).state).toBe("waiting-for-endpoint");

    expectError(await call("POST", `/v1/tasks/${victim}/cancel`, { token: bobToken }), 404, "TASK_NOT_FOUND");
    expect((await taskState(victim)).state).toBe("waiting-for-endpoint");
    expectError(await call("POST", `/v1/tasks/${randomUUID()}/cancel`), 404, "TASK_NOT_FOUND");

    expect(await call<CancelTaskResponse>("POST", `/v1/tasks/${victim}/cancel`)).toEqual({
      status: 200,
      body: { task_id: victim, cancelled: true, state: "cancelled" },
    });
    const queued = await take<{ kind: string; tasks?: Array<{ taskId: string }>; taskIds?: string[] }>(
      uepTaskQueue(endpointId, s.uep_id),
      2,
    );
    // The submit's two tasks in one batch message, then the cancel.
    expect(queued.map((m) => m.kind)).toEqual(["tasks", "cancel"]);
    expect(queued[0]?.tasks?.map((t) => t.taskId)).toEqual([victim, other]);
    expect(queued[1]).toMatchObject({ kind: "cancel", endpointId, uepId: s.uep_id, taskIds: [victim] });
    const error = {
      code: "TASK_CANCELLED",
      name: "CancelledError",
      message: `Task ${victim} was cancelled before it started.`,
    };
    const [pushed] = await take<ResultMessage>(s.result_queue, 1);
    expect(pushed).toMatchObject({ taskId: victim, state: "cancelled", taskGroupId: s.task_group_id, error });
    expect(await taskState(victim)).toMatchObject({ state: "cancelled", error, completed_at: expect.any(String) });

    // A second cancel changes nothing; a late UEP result never moves it out of `cancelled`.
    expect((await call<CancelTaskResponse>("POST", `/v1/tasks/${victim}/cancel`)).body).toEqual({
      task_id: victim,
      cancelled: false,
      state: "cancelled",
    });
    const late = (taskId: string): ResultMessage => ({
      v: 1,
      kind: "result",
      taskId,
      endpointId,
      uepId: s.uep_id,
      state: "success",
      result: { strategy: JSON_DATA, data: "7" },
      completedAt: Date.now(),
    });
    ep.publish(RESULTS_EXCHANGE, resultsRoutingKey(endpointId), Buffer.from(JSON.stringify(late(victim))));
    ep.publish(RESULTS_EXCHANGE, resultsRoutingKey(endpointId), Buffer.from(JSON.stringify(late(other))));
    // The other task's result proves the late one was handled (same channel, in order).
    await expect.poll(async () => (await taskState(other)).state, { timeout: 10_000 }).toBe("success");
    expect(await taskState(victim)).toMatchObject({ state: "cancelled", error });
    // Only the other task's result is forwarded.
    expect((await take<ResultMessage>(s.result_queue, 1)).map((m) => m.taskId)).toEqual([other]);
  });

  it("does not cancel a running task: cancelled false with its state", async () => {
    const endpointId = await registerEndpoint();
    const ep = await asEndpoint(endpointId);
    const functionId = await registerFunction();
    const s = await submit(endpointId, submitBody(functionId));
    const [taskId] = s.task_ids as [string];
    ep.publish(
      RESULTS_EXCHANGE,
      resultsRoutingKey(endpointId),
      Buffer.from(
        JSON.stringify({
          v: 1,
          kind: "task_status",
          endpointId,
          uepId: s.uep_id,
          state: "running",
          taskIds: [taskId],
          sentAt: Date.now(),
        }),
      ),
    );
    await expect.poll(async () => (await taskState(taskId)).state, { timeout: 10_000 }).toBe("running");
    expect((await call<CancelTaskResponse>("POST", `/v1/tasks/${taskId}/cancel`)).body).toEqual({
      task_id: taskId,
      cancelled: false,
      state: "running",
    });
    expect((await channel.checkQueue(s.result_queue)).messageCount).toBe(0);
  });
});

describe("GET /v1/task_groups", () => {
  it("lists the caller's groups with counts per state, and details one with its unfinished tasks", async () => {
    const endpointId = await registerEndpoint();
    const functionId = await registerFunction();
    const s = await submit(endpointId, submitBody(functionId, 3));
    const [cancelled, ...waiting] = s.task_ids as [string, string, string];
    expect((await call<CancelTaskResponse>("POST", `/v1/tasks/${cancelled}/cancel`)).body.cancelled).toBe(true);

    const list = await call<TaskGroupInfo[]>("GET", "/v1/task_groups");
    expect(list.status).toBe(200);
    expect(list.body.find((g) => g.task_group_id === s.task_group_id)).toEqual({
      task_group_id: s.task_group_id,
      created_at: expect.any(String),
      task_counts: { cancelled: 1, "waiting-for-endpoint": 2 },
    });
    const bobs = await call<TaskGroupInfo[]>("GET", "/v1/task_groups", { token: bobToken });
    expect(bobs.body.map((g) => g.task_group_id)).not.toContain(s.task_group_id);

    const detail = await call<TaskGroupDetail>("GET", `/v1/task_groups/${s.task_group_id}`);
    expect(detail.status).toBe(200);
    expect(detail.body).toMatchObject({
      task_group_id: s.task_group_id,
      task_counts: { cancelled: 1, "waiting-for-endpoint": 2 },
      // Its own read-only account (scoped accounts are the default).
      amqp: {
        url: expect.stringMatching(
          new RegExp(`^amqp://${taskGroupBrokerUser(s.task_group_id)}:[^@]+@127\\.0\\.0\\.1:5672/`),
        ),
      },
      result_queue: taskGroupResultQueue(s.task_group_id),
    });
    expect(detail.body.pending_tasks.sort((a, b) => a.task_id.localeCompare(b.task_id))).toEqual(
      waiting.sort().map((id) => ({ task_id: id, endpoint_id: endpointId, state: "waiting-for-endpoint" })),
    );

    const hidden = expectError(
      await call("GET", `/v1/task_groups/${s.task_group_id}`, { token: bobToken }),
      404,
      "TASK_GROUP_NOT_FOUND",
    );
    expect(hidden).toContain(s.task_group_id);
    expectError(await call("GET", `/v1/task_groups/${randomUUID()}`), 404, "TASK_GROUP_NOT_FOUND");
  });
});
