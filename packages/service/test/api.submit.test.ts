/**
 * The REST API end to end, submits and the broker side (results, retries, limits, heartbeats), in-process (`startService`) with the real RabbitMQ
 * (a vhost of its own) and both stores: PGlite and Postgres. The test plays
 * the endpoint's part (MEP, UEP) with its own amqplib channel.
 */
import { randomUUID } from "node:crypto";
import {
  commandQueue,
  computeUepId,
  endpointBrokerUser,
  HEARTBEATS_EXCHANGE,
  heartbeatsRoutingKey,
  JSON_DATA,
  MAX_BATCH_STATUS_IDS,
  RESULTS_EXCHANGE,
  resultsRoutingKey,
  SOURCE_CODE,
  type StartUepCommand,
  type SubmitResponse,
  type TaskBatchMessage,
  type TaskMessage,
  type TaskStatusResponse,
  taskGroupBrokerUser,
  taskGroupResultQueue,
  uepBrokerUser,
  uepTaskQueue,
} from "@conduit/protocol";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "../src/auth/tokens.js";
import { MAX_REQUEST_BYTES, MAX_TASK_BYTES, useApiService } from "./helpers/api-suite.js";
import { submitBody } from "./helpers/rest.js";
import { successResult } from "./helpers/result-consumer.js";
import { TEST_STORES } from "./helpers/service.js";

/** Success results (`taskId`, `data`) from a submit's UEP as its endpoint publishes them, all completed now. */
function successResults(endpointId: string, uepId: string) {
  const completedAt = Date.now();
  return (taskId: string, data: string) => successResult(endpointId, uepId, taskId, data, completedAt);
}

describe.each(TEST_STORES)("API submits on $name", ({ store }) => {
  const api = useApiService(store);
  const {
    scopedUrl,
    call,
    expectError,
    registerEndpoint,
    registerFunction,
    asEndpoint,
    take,
    takeResults,
    queueLength,
  } = api;

  it("registers endpoints, declares their command queue, and refuses another owner's id", async () => {
    const r = await call<{ endpoint_id: string; amqp: { url: string }; command_queue: string }>(
      "POST",
      "/v1/endpoints",
      {
        body: { name: "lab", display_name: "Lab", metadata: { host: "h" } },
      },
    );
    expect(r.status).toBe(200);
    const id = r.body.endpoint_id;
    expect(r.body).toEqual({
      endpoint_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      amqp: { url: scopedUrl(endpointBrokerUser(id)), serviceUser: "guest", managementPort: 15672 },
      command_queue: commandQueue(id),
    });
    expect(await queueLength(commandQueue(id))).toBe(0);
    // Re-register under the same id (the MEP restarting).
    expect((await call("POST", "/v1/endpoints", { body: { endpoint_id: id, name: "lab2" } })).body).toMatchObject({
      endpoint_id: id,
    });
    const list = await call<Array<{ endpoint_id: string; name: string; owner: string; status: string }>>(
      "GET",
      "/v1/endpoints",
    );
    expect(list.body.find((e) => e.endpoint_id === id)).toEqual({
      endpoint_id: id,
      name: "lab2",
      display_name: null,
      owner: "admin@localhost",
      multi_user: false,
      high_assurance: false,
      status: "offline",
      last_heartbeat: null,
    });
    expect((await call<unknown[]>("GET", "/v1/endpoints", { token: api.bobToken })).body).toEqual([]);
    const stolen = await call("POST", "/v1/endpoints", {
      token: api.bobToken,
      body: { endpoint_id: id, name: "mine" },
    });
    const refusal = expectError(stolen, 409, "ENDPOINT_ID_CONFLICT").message;
    expect(refusal).toContain(id);
    // What to do, and the owner named only to the administrator.
    expect(refusal).toContain("not to bob@example.org");
    expect(refusal).toContain("conduit-endpoint delete mine");
    expect(refusal).not.toContain("admin@localhost");
    const bobsId = randomUUID();
    expect(
      (await call("POST", "/v1/endpoints", { token: api.bobToken, body: { endpoint_id: bobsId, name: "b" } })).status,
    ).toBe(200);
    const taken = await call("POST", "/v1/endpoints", { body: { endpoint_id: bobsId, name: "b" } });
    expect(expectError(taken, 409, "ENDPOINT_ID_CONFLICT").message).toContain(
      "registered to bob@example.org, not to admin@localhost",
    );
  });

  it("registers a payload once and returns it", async () => {
    const data = `(a, b) => a * b + ${Math.random()}`;
    const id = await registerFunction(data);
    expect(await registerFunction(data)).toBe(id);
    expect(await call("GET", `/v1/functions/${id}`)).toEqual({
      status: 200,
      body: { function_id: id, name: null, function: { strategy: SOURCE_CODE, data } },
    });
    expectError(await call("GET", `/v1/functions/${randomUUID()}`), 404, "FUNCTION_NOT_FOUND");
  });

  it("submits: the task lands in the UEP queue, a start command in the MEP's, results come back", async () => {
    const endpointId = await registerEndpoint();
    const ep = await asEndpoint(endpointId);
    const functionData = `(x) => x * 2 + ${Math.random()}`;
    const functionId = await registerFunction(functionData);
    const body = submitBody(functionId, 2, {
      user_endpoint_config: { worker_init: "true" },
      resource_specification: { num_nodes: 1 },
    });
    const r = await call<SubmitResponse>("POST", `/v1/endpoints/${endpointId}/submit`, { body });
    expect(r.status).toBe(200);
    const { task_group_id: tg, uep_id: uepId } = r.body;
    expect(r.body).toEqual({
      task_group_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      uep_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      task_ids: body.tasks.map((t) => t.task_id),
      amqp: { url: scopedUrl(taskGroupBrokerUser(tg)), serviceUser: "guest" },
      result_queue: taskGroupResultQueue(tg),
    });

    const taskQueue = uepTaskQueue(endpointId, uepId);
    // The submit's tasks for one UEP travel as one batch message.
    const sent = await take<TaskBatchMessage>(taskQueue);
    expect(sent.kind).toBe("tasks");
    expect(sent.tasks).toHaveLength(2);
    const [first, second] = sent.tasks as [TaskMessage, TaskMessage];
    expect(first).toEqual({
      v: 1,
      kind: "task",
      taskId: body.tasks[0].task_id,
      functionId,
      endpointId,
      uepId,
      taskGroupId: tg,
      function: { strategy: SOURCE_CODE, data: functionData },
      args: body.tasks[0].args,
      resourceSpecification: { num_nodes: 1 },
    });
    expect(second.taskId).toBe(body.tasks[1].task_id);
    const command = await take<StartUepCommand>(commandQueue(endpointId));
    expect(command).toMatchObject({
      v: 1,
      kind: "start_uep",
      endpointId,
      uepId,
      uepName: `uep.${endpointId}.${uepId}`,
      identity: { username: "admin@localhost" },
      userEndpointConfig: { worker_init: "true" },
      userRuntime: null,
      amqpUrl: scopedUrl(uepBrokerUser(uepId)),
    });
    const [t1, t2] = body.tasks.map((t) => t.task_id);
    expect((await call<TaskStatusResponse>("GET", `/v1/tasks/${t1}`)).body).toMatchObject({
      task_id: t1,
      state: "waiting-for-endpoint",
      endpoint_id: endpointId,
      function_id: functionId,
      task_group_id: tg,
      completed_at: null,
    });

    // The UEP reports both running, then one result and one failure.
    const publish = (message: object) =>
      ep.publish(RESULTS_EXCHANGE, resultsRoutingKey(endpointId), Buffer.from(JSON.stringify(message)));
    publish({ v: 1, kind: "task_status", endpointId, uepId, state: "running", taskIds: [t1, t2], sentAt: Date.now() });
    await expect
      .poll(async () => (await call<TaskStatusResponse>("GET", `/v1/tasks/${t2}`)).body.state)
      .toBe("running");
    const completedAt = Date.now();
    publish({
      v: 1,
      kind: "result",
      taskId: t1,
      endpointId,
      uepId,
      state: "success",
      result: { strategy: JSON_DATA, data: "2" },
      completedAt,
    });
    publish({
      v: 1,
      kind: "result",
      taskId: t2,
      endpointId,
      uepId,
      state: "failed",
      error: { code: "TASK_EXCEPTION", name: "TypeError", message: "x is not a number" },
      completedAt,
    });
    await expect
      .poll(async () => (await call<TaskStatusResponse>("GET", `/v1/tasks/${t1}`)).body.state)
      .toBe("success");
    expect((await call<TaskStatusResponse>("GET", `/v1/tasks/${t1}`)).body).toMatchObject({
      result: { strategy: JSON_DATA, data: "2" },
      completed_at: new Date(completedAt).toISOString(),
    });
    const { results: forwarded } = await takeResults(taskGroupResultQueue(tg), 2);
    expect(forwarded.find((m) => m.taskId === t1)).toEqual({
      v: 1,
      kind: "result",
      taskId: t1,
      endpointId,
      uepId,
      taskGroupId: tg,
      state: "success",
      result: { strategy: JSON_DATA, data: "2" },
      completedAt,
    });
    expect(forwarded.find((m) => m.taskId === t2)).toMatchObject({
      taskGroupId: tg,
      state: "failed",
      error: { code: "TASK_EXCEPTION", message: "x is not a number" },
    });

    const batch = await call<{ tasks: Record<string, TaskStatusResponse> }>("POST", "/v1/tasks/batch_status", {
      body: { task_ids: [t1, t2, randomUUID()] },
    });
    expect(Object.keys(batch.body.tasks).sort()).toEqual([t1, t2].sort());
    expect(batch.body.tasks[t2]).toMatchObject({ state: "failed", error: { name: "TypeError" } });
    // Another identity does not see these tasks.
    expectError(await call("GET", `/v1/tasks/${t1}`, { token: api.bobToken }), 404, "TASK_NOT_FOUND");
    expect(
      (await call("POST", "/v1/tasks/batch_status", { token: api.bobToken, body: { task_ids: [t1] } })).body,
    ).toEqual({
      tasks: {},
    });
  });

  it("survives malformed broker messages and ignores a second result", async () => {
    const endpointId = await registerEndpoint();
    const ep = await asEndpoint(endpointId);
    const functionId = await registerFunction();
    const body = submitBody(functionId, 2);
    const { body: submitted } = await call<SubmitResponse>("POST", `/v1/endpoints/${endpointId}/submit`, { body });
    const [a, b] = body.tasks.map((t) => t.task_id);
    const key = resultsRoutingKey(endpointId);
    for (const garbage of ["not json", "{}", JSON.stringify({ v: 1, kind: "result", taskId: "nope" })]) {
      ep.publish(RESULTS_EXCHANGE, key, Buffer.from(garbage));
    }
    ep.publish(HEARTBEATS_EXCHANGE, heartbeatsRoutingKey(endpointId), Buffer.from("[1, 2"));
    const result = successResults(endpointId, submitted.uep_id);
    const resultQueue = taskGroupResultQueue(submitted.task_group_id);
    ep.publish(RESULTS_EXCHANGE, key, Buffer.from(JSON.stringify(result(a, "1"))));
    expect((await takeResults(resultQueue, 1)).results).toMatchObject([{ taskId: a, result: { data: "1" } }]);
    // A second result for a finished task (a re-run) is neither stored nor forwarded.
    ep.publish(RESULTS_EXCHANGE, key, Buffer.from(JSON.stringify(result(a, "99"))));
    ep.publish(RESULTS_EXCHANGE, key, Buffer.from(JSON.stringify(result(b, "2"))));
    expect((await takeResults(resultQueue, 1)).results).toMatchObject([{ taskId: b }]);
    expect(await queueLength(resultQueue)).toBe(0);
    expect((await call<TaskStatusResponse>("GET", `/v1/tasks/${a}`)).body.result).toEqual({
      strategy: JSON_DATA,
      data: "1",
    });
  });

  it("stores the good results of a results message, drops its malformed item, and forwards them in one message", async () => {
    const endpointId = await registerEndpoint();
    const ep = await asEndpoint(endpointId);
    const functionId = await registerFunction();
    const body = submitBody(functionId, 3);
    const { body: submitted } = await call<SubmitResponse>("POST", `/v1/endpoints/${endpointId}/submit`, { body });
    const [a, b, c] = body.tasks.map((t) => t.task_id);
    const result = successResults(endpointId, submitted.uep_id);
    const failed = {
      ...result(c, ""),
      state: "failed",
      result: undefined,
      error: { code: "TASK_EXCEPTION", name: "Error", message: "boom" },
    };
    const message = {
      v: 1,
      kind: "results",
      results: [result(a, "1"), { ...result(randomUUID(), "x"), taskId: "not-a-uuid" }, result(b, "2"), failed, null],
    };
    ep.publish(RESULTS_EXCHANGE, resultsRoutingKey(endpointId), Buffer.from(JSON.stringify(message)));

    const resultQueue = taskGroupResultQueue(submitted.task_group_id);
    const forwarded = await takeResults(resultQueue, 3);
    expect(forwarded.messages).toBe(1);
    expect(forwarded.results.map((r) => r.taskId).sort()).toEqual([a, b, c].sort());
    expect(forwarded.results.find((r) => r.taskId === a)).toEqual({
      ...result(a, "1"),
      taskGroupId: submitted.task_group_id,
    });
    expect(forwarded.results.find((r) => r.taskId === c)).toMatchObject({
      state: "failed",
      error: { code: "TASK_EXCEPTION", message: "boom" },
    });
    expect(await queueLength(resultQueue)).toBe(0);
    const stored = await call<{ tasks: Record<string, TaskStatusResponse> }>("POST", "/v1/tasks/batch_status", {
      body: { task_ids: [a, b, c] },
    });
    expect(stored.body.tasks[a]).toMatchObject({ state: "success", result: { data: "1" } });
    expect(stored.body.tasks[b]).toMatchObject({ state: "success", result: { data: "2" } });
    expect(stored.body.tasks[c]).toMatchObject({ state: "failed", error: { message: "boom" } });
  });

  it("accepts the same submit again, refuses a conflicting reuse, and cancels a task published for a UEP whose insert failed", async () => {
    const endpointId = await registerEndpoint();
    const functionId = await registerFunction();
    const body = submitBody(functionId, 3, { task_group_id: randomUUID() });
    const first = await call<SubmitResponse>("POST", `/v1/endpoints/${endpointId}/submit`, { body });
    expect(first.status).toBe(200);
    const queue = uepTaskQueue(endpointId, first.body.uep_id);
    // Its 3 tasks in one batch message.
    expect(await queueLength(queue)).toBe(1);
    const again = await call<SubmitResponse>("POST", `/v1/endpoints/${endpointId}/submit`, { body });
    expect(again).toEqual({ status: 200, body: first.body });
    // The insert and the publish overlap, so a retry publishes its tasks again (a second batch): a UEP
    // drops a copy of a task it holds or finished, and a second result is never forwarded.
    expect(await queueLength(queue)).toBe(2);

    const otherArgs = { ...body, tasks: [{ ...body.tasks[0], args: { strategy: JSON_DATA, data: "[42]" } }] };
    const conflict = await call("POST", `/v1/endpoints/${endpointId}/submit`, { body: otherArgs });
    expect(expectError(conflict, 409, "TASK_ID_CONFLICT").message).toContain(body.tasks[0].task_id);
    // Same identity, endpoint and configuration: the lone copy went (unbatched) to the same UEP, which owns that id.
    expect(await queueLength(queue)).toBe(3);

    // Race 2, an insert that fails after the publish: Bob's copy reached his own UEP's
    // queue, and a cancel follows it there, so his UEP drops it unrun.
    const bobEndpoint = await registerEndpoint({}, api.bobToken);
    const stolen = await call("POST", `/v1/endpoints/${bobEndpoint}/submit`, {
      token: api.bobToken,
      body: { tasks: body.tasks },
    });
    expectError(stolen, 409, "TASK_ID_CONFLICT");
    expect(await queueLength(queue)).toBe(3);
    const bob = await api.service.store.findIdentityByUsername("bob@example.org");
    const bobQueue = uepTaskQueue(bobEndpoint, computeUepId(bobEndpoint, bob!.id, {}, null));
    const copies = await take<TaskBatchMessage>(bobQueue);
    expect(copies.tasks.map((m) => (m as TaskMessage).taskId)).toEqual(body.tasks.map((t) => t.task_id));
    expect(await take(bobQueue)).toMatchObject({ kind: "cancel", taskIds: body.tasks.map((t) => t.task_id) });
  });

  it("publishes a known task on retry if an earlier submit stored it but never published it", async () => {
    const endpointId = await registerEndpoint();
    const functionId = await registerFunction();
    const body = submitBody(functionId, 1, { task_group_id: randomUUID() });
    const admin = await api.service.store.findIdentityByUsername("admin@localhost");
    const uepId = computeUepId(endpointId, admin!.id, {}, null);
    // As if the service died between storing the task and publishing it.
    const args = body.tasks[0].args;
    await api.service.store.insertTasks({
      ownerId: admin!.id,
      endpointId,
      uepId,
      taskGroupId: body.task_group_id!,
      taskGroupGiven: true,
      uepConfig: {},
      uepRuntime: null,
      tasks: [{ id: body.tasks[0].task_id, functionId, argsBytes: 0, argsSha256: sha256Hex(args.strategy, args.data) }],
    });
    const retry = await call<SubmitResponse>("POST", `/v1/endpoints/${endpointId}/submit`, { body });
    expect(retry.status).toBe(200);
    expect((await take<TaskMessage>(uepTaskQueue(endpointId, uepId))).taskId).toBe(body.tasks[0].task_id);
    expect((await call<TaskStatusResponse>("GET", `/v1/tasks/${body.tasks[0].task_id}`)).body.state).toBe(
      "waiting-for-endpoint",
    );
  });

  it("refuses functions the endpoint does not allow, with the seed's message", async () => {
    const allowed = await registerFunction();
    const other = await registerFunction();
    const endpointId = await registerEndpoint({ allowed_functions: [allowed] });
    expect((await call("POST", `/v1/endpoints/${endpointId}/submit`, { body: submitBody(allowed) })).status).toBe(200);
    const refused = await call("POST", `/v1/endpoints/${endpointId}/submit`, { body: submitBody(other) });
    expect(expectError(refused, 403, "FUNCTION_NOT_PERMITTED").message).toBe(
      `Function ${other} not permitted on endpoint ${endpointId}`,
    );
    // Re-registered without the restriction: allowed at once.
    await registerEndpoint({ endpoint_id: endpointId });
    expect((await call("POST", `/v1/endpoints/${endpointId}/submit`, { body: submitBody(other) })).status).toBe(200);
  });

  it("runs only the owner's tasks on a single-user endpoint, anyone's on a multi-user one", async () => {
    const functionId = await registerFunction(undefined, api.bobToken);
    const single = await registerEndpoint();
    const refused = await call("POST", `/v1/endpoints/${single}/submit`, {
      token: api.bobToken,
      body: submitBody(functionId),
    });
    expect(expectError(refused, 403, "ENDPOINT_NOT_PERMITTED").message).toContain(single);
    expectError(
      await call("GET", `/v1/endpoints/${single}/status`, { token: api.bobToken }),
      403,
      "ENDPOINT_NOT_PERMITTED",
    );
    const multi = await registerEndpoint({ multi_user: true });
    const accepted = await call<SubmitResponse>("POST", `/v1/endpoints/${multi}/submit`, {
      token: api.bobToken,
      body: submitBody(functionId),
    });
    expect(accepted.status).toBe(200);
    const command = await take<StartUepCommand>(commandQueue(multi));
    expect(command.identity).toMatchObject({ username: "bob@example.org", name: "Bob" });
  });

  it("treats upper-case ids as the same ids", async () => {
    const functionId = await registerFunction();
    const endpointId = await registerEndpoint({ allowed_functions: [functionId.toUpperCase()] });
    expect(
      await registerEndpoint({ endpoint_id: endpointId.toUpperCase(), allowed_functions: [functionId.toUpperCase()] }),
    ).toBe(endpointId);
    const body = submitBody(functionId.toUpperCase());
    body.tasks[0].task_id = body.tasks[0].task_id.toUpperCase();
    const r = await call<SubmitResponse>("POST", `/v1/endpoints/${endpointId.toUpperCase()}/submit`, { body });
    expect(r.status).toBe(200);
    const task = await take<TaskMessage>(uepTaskQueue(endpointId, r.body.uep_id));
    expect(task).toMatchObject({ taskId: body.tasks[0].task_id.toLowerCase(), functionId, endpointId });
    expect((await call("POST", `/v1/endpoints/${endpointId}/submit`, { body })).status).toBe(200);
  });

  it("answers unknown endpoints and functions with 404", async () => {
    const functionId = await registerFunction();
    const ghost = randomUUID();
    const r = await call("POST", `/v1/endpoints/${ghost}/submit`, { body: submitBody(functionId) });
    expect(expectError(r, 404, "ENDPOINT_NOT_FOUND").message).toContain(ghost);
    const endpointId = await registerEndpoint();
    const unknown = randomUUID();
    const f = await call("POST", `/v1/endpoints/${endpointId}/submit`, { body: submitBody(unknown) });
    expect(expectError(f, 404, "FUNCTION_NOT_FOUND").message).toBe(
      `Function ${unknown} is not registered; register it first (Client.registerFunction) and submit with the id it returns.`,
    );
    expectError(await call("GET", `/v1/endpoints/${ghost}/status`), 404, "ENDPOINT_NOT_FOUND");
  });

  it("refuses a task over the size limit and a body over the request limit with 413", async () => {
    const endpointId = await registerEndpoint();
    const functionId = await registerFunction();
    const body = submitBody(functionId);
    body.tasks[0].args = { strategy: JSON_DATA, data: "x".repeat(MAX_TASK_BYTES) };
    const r = await call("POST", `/v1/endpoints/${endpointId}/submit`, { body });
    const message = expectError(r, 413, "TASK_PAYLOAD_TOO_LARGE").message;
    expect(message).toContain(body.tasks[0].task_id);
    expect(message).toMatch(new RegExp(`is \\d+ bytes, over the limit of ${MAX_TASK_BYTES} bytes`));
    const huge = submitBody(functionId, 20);
    for (const t of huge.tasks) t.args = { strategy: JSON_DATA, data: "y".repeat(MAX_TASK_BYTES / 2) };
    const tooBig = await call("POST", `/v1/endpoints/${endpointId}/submit`, { body: huge });
    expect(expectError(tooBig, 413, "REQUEST_TOO_LARGE").message).toContain(`limit of ${MAX_REQUEST_BYTES} bytes`);
    expect(
      await queueLength(
        uepTaskQueue(
          endpointId,
          (await call<SubmitResponse>("POST", `/v1/endpoints/${endpointId}/submit`, { body: submitBody(functionId) }))
            .body.uep_id,
        ),
      ),
    ).toBe(1);
  });

  it("answers batch_status for up to MAX_BATCH_STATUS_IDS ids, and 413 naming the cap for more", async () => {
    const endpointId = await registerEndpoint();
    const body = submitBody(await registerFunction());
    expect((await call("POST", `/v1/endpoints/${endpointId}/submit`, { body })).status).toBe(200);
    const known = body.tasks[0].task_id;
    const ids = [known, ...Array.from({ length: MAX_BATCH_STATUS_IDS - 1 }, () => randomUUID())];
    const atCap = await call<{ tasks: Record<string, unknown> }>("POST", "/v1/tasks/batch_status", {
      body: { task_ids: ids },
    });
    expect(atCap.status).toBe(200);
    expect(Object.keys(atCap.body.tasks)).toEqual([known]);
    // 20,000 ids fit under this service's request limit (MAX_REQUEST_BYTES).
    for (const n of [MAX_BATCH_STATUS_IDS + 1, 20_000]) {
      const over = await call("POST", "/v1/tasks/batch_status", {
        body: { task_ids: [...ids, ...Array.from({ length: n - ids.length }, () => randomUUID())] },
      });
      expect(expectError(over, 413, "BATCH_TOO_LARGE").message).toBe(
        `batch_status takes at most ${MAX_BATCH_STATUS_IDS} task ids per request, not ${n}; ask for them in requests of ${MAX_BATCH_STATUS_IDS} or fewer (the SDK's Client.getBatchStatus does).`,
      );
    }
    // Ids that are not even UUIDs: the cap is checked first, the ids after.
    const junk = await call("POST", "/v1/tasks/batch_status", {
      body: { task_ids: Array.from({ length: MAX_BATCH_STATUS_IDS + 1 }, () => "x") },
    });
    expectError(junk, 413, "BATCH_TOO_LARGE");
    expect((await call("GET", "/healthz")).status).toBe(200);
  });

  it("reports an endpoint online while it sends heartbeats, offline after period 0", async () => {
    const endpointId = await registerEndpoint();
    const ep = await asEndpoint(endpointId);
    const beat = (period: number, extra: object = {}) =>
      ep.publish(
        HEARTBEATS_EXCHANGE,
        heartbeatsRoutingKey(endpointId),
        Buffer.from(
          JSON.stringify({ v: 1, kind: "heartbeat", role: "mep", endpointId, period, sentAt: Date.now(), ...extra }),
        ),
      );
    const status = async () =>
      (
        await call<{ endpoint_id: string; status: string; last_heartbeat: string | null }>(
          "GET",
          `/v1/endpoints/${endpointId}/status`,
        )
      ).body;
    expect(await status()).toEqual({ endpoint_id: endpointId, status: "offline", last_heartbeat: null });
    beat(30);
    await expect.poll(async () => (await status()).status).toBe("online");
    expect((await status()).last_heartbeat).toMatch(/^\d{4}-\d\d-\d\dT/);
    const error = { code: "UEP_START_FAILED", name: "Error", message: "template did not render" };
    beat(0, { error });
    await expect.poll(async () => (await status()).status).toBe("offline");
    expect((await api.service.store.getEndpoint(endpointId))?.lastError).toEqual(error);
  });
});
