/**
 * Every Client method against the real service (in process, PGlite, a
 * RabbitMQ vhost of its own). The test plays the endpoint on the broker, with
 * its own account: it reports results, so getResult sees a value, a remote
 * error and a cancellation.
 */
import { randomUUID } from "node:crypto";
import { JSON_DATA, MAX_BATCH_STATUS_IDS, serializeJson } from "@conduit/protocol";
import type { RunningService } from "@conduit/service";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client } from "../src/client.js";
import { ConduitApiError } from "../src/errors.js";
import { serializeArguments } from "../src/serialize.js";
import { type InProcessService, report, startInProcessService } from "./stack.helpers.js";

let running: InProcessService | undefined;
let service: RunningService;
let client: Client;
let bob: Client;

beforeAll(async () => {
  running = await startInProcessService();
  service = running.service;
  client = new Client({ serviceUrl: service.url, token: service.adminToken, retries: 0 });
  bob = new Client({ serviceUrl: service.url, token: (await service.createIdentity("bob@example.org")).token });
});

afterAll(async () => {
  await running?.stop();
});

function task(functionId: string, args: unknown[]) {
  return { task_id: randomUUID(), function_id: functionId, args: serializeArguments(args, JSON_DATA) };
}

describe("Client against the real service", () => {
  it("whoami, endpoints (register, get, list, status) and functions (register, get)", async () => {
    expect(await client.whoami()).toMatchObject({ id: expect.any(String), username: "admin@localhost" });
    const registered = await client.registerEndpoint({ name: "lab", display_name: "Lab" });
    const endpointId = registered.endpoint_id;
    expect(registered.command_queue).toContain(endpointId);
    expect(await client.getEndpoint(endpointId)).toMatchObject({
      endpoint_id: endpointId,
      name: "lab",
      display_name: "Lab",
      owner: "admin@localhost",
      status: "offline",
    });
    expect((await client.listEndpoints()).map((e) => e.endpoint_id)).toContain(endpointId);
    expect(await client.getEndpointStatus(endpointId)).toEqual({
      endpoint_id: endpointId,
      status: "offline",
      last_heartbeat: null,
    });
    await expect(bob.getEndpoint(endpointId)).rejects.toMatchObject({
      name: "ConduitApiError",
      code: "ENDPOINT_NOT_PERMITTED",
      statusCode: 403,
    });

    const add = (a: number, b: number) => a + b;
    const functionId = await client.registerFunction(add);
    expect(await client.getFunction(functionId)).toMatchObject({
      function_id: functionId,
      name: "add",
      function: { strategy: "conduit.SourceCode", data: expect.stringContaining("a + b") },
    });
  });

  it("submit, getTask, getBatchStatus, getResult (value, remote error), cancelTask and task groups", async () => {
    const endpoint = await client.registerEndpoint({ name: "results" });
    const endpointId = endpoint.endpoint_id;
    const functionId = await client.registerFunction((a: number, b: number) => a + b);
    const tasks = [task(functionId, [1, 2]), task(functionId, [3, 4]), task(functionId, [5, 6])];
    const [ok, bad, cancelled] = tasks.map((t) => t.task_id) as [string, string, string];
    const submitted = await client.submit(endpointId, { tasks });
    expect(submitted.task_ids).toEqual([ok, bad, cancelled]);

    expect(await client.getTask(ok)).toMatchObject({ task_id: ok, state: "waiting-for-endpoint" });
    await expect(client.getResult(ok)).rejects.toMatchObject({ code: "TASK_PENDING" });

    expect(await client.cancelTask(cancelled)).toEqual({ task_id: cancelled, cancelled: true, state: "cancelled" });
    await report(endpoint, submitted.uep_id, ok, { state: "success", result: serializeJson(3) });
    await report(endpoint, submitted.uep_id, bad, {
      state: "failed",
      error: { code: "TASK_FAILED", name: "RangeError", message: "too big", stack: "RangeError: too big\n    at f" },
    });
    await expect.poll(async () => (await client.getTask(bad)).state, { timeout: 10_000 }).toBe("failed");
    await expect.poll(async () => (await client.getTask(ok)).state, { timeout: 10_000 }).toBe("success");

    expect(await client.getResult(ok)).toBe(3);
    await expect(client.getResult(bad)).rejects.toMatchObject({ message: expect.stringContaining("too big") });
    await expect(client.getResult(cancelled)).rejects.toMatchObject({
      code: "TASK_CANCELLED",
      message: expect.stringContaining(`Task ${cancelled} was cancelled before it started.`),
    });
    // Finished: nothing left to cancel.
    expect(await client.cancelTask(ok)).toEqual({ task_id: ok, cancelled: false, state: "success" });

    const batch = await client.getBatchStatus([ok, bad, cancelled, randomUUID()]);
    expect(Object.fromEntries(Object.entries(batch.tasks).map(([id, t]) => [id, t.state]))).toEqual({
      [ok]: "success",
      [bad]: "failed",
      [cancelled]: "cancelled",
    });
    expect((await bob.getBatchStatus([ok])).tasks).toEqual({});
    // Over the service's cap per request (which answers 413): the Client splits the ids and merges the answers.
    const many: string[] = Array.from({ length: 2 * MAX_BATCH_STATUS_IDS + 1 }, () => randomUUID());
    many.splice(MAX_BATCH_STATUS_IDS, 0, bad);
    many.push(ok);
    expect(Object.keys((await client.getBatchStatus(many)).tasks).sort()).toEqual([ok, bad].sort());

    const groups = await client.listTaskGroups();
    expect(groups.find((g) => g.task_group_id === submitted.task_group_id)?.task_counts).toEqual({
      success: 1,
      failed: 1,
      cancelled: 1,
    });
    expect(await client.getTaskGroup(submitted.task_group_id)).toMatchObject({
      task_group_id: submitted.task_group_id,
      pending_tasks: [],
      result_queue: submitted.result_queue,
      amqp: { url: expect.stringMatching(/^amqp:/) },
    });
    await expect(bob.getTaskGroup(submitted.task_group_id)).rejects.toMatchObject({
      code: "TASK_GROUP_NOT_FOUND",
      statusCode: 404,
    });
  });

  it("deleteFunction and deleteEndpoint: owner only, 409 while tasks are unfinished unless forced", async () => {
    const { endpoint_id: endpointId } = await client.registerEndpoint({ name: "doomed" });
    const functionId = await client.registerFunction((x: number) => x * 2);
    await client.submit(endpointId, { tasks: [task(functionId, [1])] });

    await expect(bob.deleteFunction(functionId)).rejects.toMatchObject({ code: "FUNCTION_NOT_OWNED", statusCode: 403 });
    expect(await client.deleteFunction(functionId)).toEqual({ id: functionId, deleted: true });
    const refused = await client.submit(endpointId, { tasks: [task(functionId, [2])] }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ConduitApiError);
    expect(refused).toMatchObject({ code: "FUNCTION_NOT_FOUND", statusCode: 404 });

    await expect(bob.deleteEndpoint(endpointId)).rejects.toMatchObject({ code: "ENDPOINT_NOT_OWNED" });
    await expect(client.deleteEndpoint(endpointId)).rejects.toMatchObject({
      code: "ENDPOINT_HAS_TASKS",
      statusCode: 409,
      message: expect.stringContaining("?force=true"),
    });
    expect(await client.deleteEndpoint(endpointId, { force: true })).toEqual({ id: endpointId, deleted: true });
    await expect(client.getEndpoint(endpointId)).rejects.toMatchObject({ code: "ENDPOINT_NOT_FOUND", statusCode: 404 });
  });
});
