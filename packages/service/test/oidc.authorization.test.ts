/**
 * The authorization rules with real logins: two users who log in with link and
 * code (JWT access tokens) and one client identity (client credentials JWT),
 * against a service started in-process on the real RabbitMQ. Each registers an
 * endpoint and a function and submits a task (no endpoint runs: tasks wait).
 * Each sees and changes only its own tasks, task groups and endpoints; a
 * function is readable by anyone who knows its id but deleted only by its
 * owner; a single-user endpoint refuses another identity's tasks; and the
 * owner recorded for everything is the logged-in identity, not admin@localhost.
 */
import {
  commandQueue,
  type StartUepCommand,
  type SubmitResponse,
  type TaskGroupInfo,
  type TaskStatusResponse,
} from "@conduit/protocol";
import type { Channel } from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningService } from "../src/index.js";
import { openChannel } from "./helpers/broker.js";
import { codeLogin, jwtPayload, tokenRequest } from "./helpers/oidc-flows.js";
import { restHelpers, submitBody } from "./helpers/rest.js";
import { startTestService } from "./helpers/service.js";

const ALICE = "alice@example.edu";
const BOB = "bob@example.edu";

/** One logged-in identity and what it made. */
interface Actor {
  label: string;
  username: string;
  id: string;
  token: string;
  endpointId: string;
  functionId: string;
  taskId: string;
  taskGroupId: string;
}

describe("authorization between logged-in identities", () => {
  const disposers: Array<() => Promise<void>> = [];
  let service: RunningService;
  let channel: Channel;
  const actors = new Map<string, Actor>();
  const actor = (label: string): Actor => {
    const found = actors.get(label);
    if (!found) throw new Error(`${label} was not set up (see beforeAll)`);
    return found;
  };

  const { call, expectError, registerEndpoint, registerFunction } = restHelpers(() => ({
    url: service.url,
    token: service.adminToken,
  }));

  /** Registers an endpoint and a function as `token`'s identity and submits one task to it. */
  async function makeThings(label: string, username: string, token: string): Promise<void> {
    const who = await call<{ id: string; username: string }>("GET", "/v1/whoami", { token });
    expect(who.status, JSON.stringify(who.body)).toBe(200);
    expect(who.body.username).toBe(username);
    const endpointId = await registerEndpoint({ name: `${label}-ep` }, token);
    const functionId = await registerFunction(undefined, token);
    const body = submitBody(functionId);
    const submitted = await call<SubmitResponse>("POST", `/v1/endpoints/${endpointId}/submit`, { token, body });
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(200);
    actors.set(label, {
      label,
      username,
      id: who.body.id,
      token,
      endpointId,
      functionId,
      taskId: body.tasks[0].task_id,
      taskGroupId: submitted.body.task_group_id,
    });
  }

  beforeAll(async () => {
    const started = await startTestService();
    disposers.push(started.dispose);
    service = started.value;
    const ch = await openChannel(started.amqpUrl);
    disposers.push(() => ch.close());
    channel = ch.channel;

    for (const [username, password] of [
      [ALICE, "alice's long password"],
      [BOB, "bob's long password"],
    ]) {
      const added = await call("POST", "/v1/admin/identities", { body: { username, password } });
      expect(added.status, JSON.stringify(added.body)).toBe(201);
      const tokens = await codeLogin(service.url, username, password);
      await makeThings(username === ALICE ? "alice" : "bob", username, tokens.access_token);
    }

    const created = await call<{ client: { client_id: string; username: string }; client_secret: string }>(
      "POST",
      "/v1/admin/clients",
      { body: { name: "ci-bot" } },
    );
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const { client, client_secret: secret } = created.body;
    const granted = await tokenRequest(
      service.url,
      { grant_type: "client_credentials", scope: "conduit" },
      { id: client.client_id, secret },
    );
    expect(granted.status, JSON.stringify(granted.body)).toBe(200);
    await makeThings("client", client.username, String(granted.body.access_token));
  }, 120_000);

  afterAll(async () => {
    for (const dispose of disposers.reverse()) await dispose();
  });

  it("logs each in with a JWT of its own identity, none of them the administrator", async () => {
    const admin = await service.store.findIdentityByUsername("admin@localhost");
    const ids = ["alice", "bob", "client"].map((label) => actor(label).id);
    expect(new Set([...ids, admin?.id]).size).toBe(4);
    for (const label of ["alice", "bob", "client"]) {
      const a = actor(label);
      expect(a.token.split(".")).toHaveLength(3);
      expect(jwtPayload(a.token).sub).toBe(a.id);
    }
    expect(actor("client").username).toMatch(/@clients\.conduit$/);
  });

  it.each(["alice", "bob", "client"])("records %s as the owner of what it made", async (label) => {
    const a = actor(label);
    expect((await service.store.getEndpoint(a.endpointId))?.ownerId).toBe(a.id);
    expect((await service.store.getFunction(a.functionId))?.ownerId).toBe(a.id);
    expect((await service.store.getTask(a.taskId))?.ownerId).toBe(a.id);
    expect((await service.store.getTaskGroup(a.taskGroupId))?.ownerId).toBe(a.id);
    const listed = await call<Array<{ endpoint_id: string; owner: string }>>("GET", "/v1/endpoints", {
      token: a.token,
    });
    expect(listed.body).toEqual([expect.objectContaining({ endpoint_id: a.endpointId, owner: a.username })]);
    // The endpoint is told to start the user endpoint process for this identity.
    let command: StartUepCommand | undefined;
    await expect
      .poll(
        async () => {
          const msg = await channel.get(commandQueue(a.endpointId), { noAck: true });
          if (msg) command = JSON.parse(msg.content.toString()) as StartUepCommand;
          return command !== undefined;
        },
        { timeout: 10_000, interval: 50 },
      )
      .toBe(true);
    expect(command?.identity).toMatchObject({ id: a.id, username: a.username });
  });

  // Both ways round: each of a pair is kept from the other's things.
  const pairs = [
    ["alice", "bob"],
    ["bob", "alice"],
    ["client", "alice"],
    ["alice", "client"],
  ];

  describe.each(pairs)("%s against %s", (me, other) => {
    it("sees its own task, and another's not at all (404 TASK_NOT_FOUND, left out of batch_status, not cancelled)", async () => {
      const a = actor(me);
      const b = actor(other);
      const own = await call<TaskStatusResponse>("GET", `/v1/tasks/${a.taskId}`, { token: a.token });
      expect(own.status).toBe(200);
      expect(own.body).toMatchObject({ task_id: a.taskId, state: "waiting-for-endpoint", endpoint_id: a.endpointId });
      expectError(await call("GET", `/v1/tasks/${b.taskId}`, { token: a.token }), 404, "TASK_NOT_FOUND");
      const batch = await call<{ tasks: Record<string, TaskStatusResponse> }>("POST", "/v1/tasks/batch_status", {
        token: a.token,
        body: { task_ids: [a.taskId, b.taskId] },
      });
      expect(batch.status).toBe(200);
      expect(Object.keys(batch.body.tasks)).toEqual([a.taskId]);
      expectError(await call("POST", `/v1/tasks/${b.taskId}/cancel`, { token: a.token }), 404, "TASK_NOT_FOUND");
      const theirs = await call<TaskStatusResponse>("GET", `/v1/tasks/${b.taskId}`, { token: b.token });
      expect(theirs.body.state).toBe("waiting-for-endpoint");
    });

    it("may read another's function by its id, as the API allows, but not delete it (403 FUNCTION_NOT_OWNED)", async () => {
      const a = actor(me);
      const b = actor(other);
      const read = await call<{ function_id: string }>("GET", `/v1/functions/${b.functionId}`, { token: a.token });
      expect(read.status).toBe(200);
      expect(read.body.function_id).toBe(b.functionId);
      const refused = await call("DELETE", `/v1/functions/${b.functionId}`, { token: a.token });
      expect(expectError(refused, 403, "FUNCTION_NOT_OWNED").message).toContain(b.functionId);
      expect((await call("GET", `/v1/functions/${b.functionId}`, { token: b.token })).status).toBe(200);
      expect(await service.store.getFunction(b.functionId)).toBeDefined();
    });

    it("lists and reads only its own task groups (another's is 404 TASK_GROUP_NOT_FOUND)", async () => {
      const a = actor(me);
      const b = actor(other);
      const list = await call<TaskGroupInfo[]>("GET", "/v1/task_groups", { token: a.token });
      expect(list.status).toBe(200);
      expect(list.body.map((g) => g.task_group_id)).toEqual([a.taskGroupId]);
      const own = await call<{ task_group_id: string; pending_tasks: Array<{ task_id: string }> }>(
        "GET",
        `/v1/task_groups/${a.taskGroupId}`,
        { token: a.token },
      );
      expect(own.status).toBe(200);
      expect(own.body.pending_tasks.map((t) => t.task_id)).toContain(a.taskId);
      expectError(
        await call("GET", `/v1/task_groups/${b.taskGroupId}`, { token: a.token }),
        404,
        "TASK_GROUP_NOT_FOUND",
      );
    });

    it("lists only its own endpoints; another's single-user endpoint is refused for reading, status and delete", async () => {
      const a = actor(me);
      const b = actor(other);
      const list = await call<Array<{ endpoint_id: string }>>("GET", "/v1/endpoints", { token: a.token });
      expect(list.body.map((e) => e.endpoint_id)).toEqual([a.endpointId]);
      const path = `/v1/endpoints/${b.endpointId}`;
      expectError(await call("GET", path, { token: a.token }), 403, "ENDPOINT_NOT_PERMITTED");
      expectError(await call("GET", `${path}/status`, { token: a.token }), 403, "ENDPOINT_NOT_PERMITTED");
      expectError(await call("DELETE", path, { token: a.token }), 403, "ENDPOINT_NOT_OWNED");
      expect(await service.store.getEndpoint(b.endpointId)).toBeDefined();
    });

    it("cannot run its task on another's single-user endpoint (403 ENDPOINT_NOT_PERMITTED)", async () => {
      const a = actor(me);
      const b = actor(other);
      const body = submitBody(a.functionId, 1, { task_group_id: a.taskGroupId });
      const refused = await call("POST", `/v1/endpoints/${b.endpointId}/submit`, { token: a.token, body });
      expect(expectError(refused, 403, "ENDPOINT_NOT_PERMITTED").message).toContain(b.endpointId);
      expect(await service.store.getTask(body.tasks[0].task_id)).toBeUndefined();
      // The same submit to its own endpoint is accepted (the refusal is about the endpoint), in its own group.
      const own = await call("POST", `/v1/endpoints/${a.endpointId}/submit`, { token: a.token, body });
      expect(own.status).toBe(200);
      expect(await service.store.getTask(body.tasks[0].task_id)).toMatchObject({
        ownerId: a.id,
        taskGroupId: a.taskGroupId,
      });
    });
  });
});
