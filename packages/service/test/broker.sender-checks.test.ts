/**
 * Every consumer of the service checks who published (`user-id`, which
 * RabbitMQ checks against the publishing connection's user), never the ids in
 * the body. Played as attackers with scoped accounts on a real broker: Bob
 * holds the accounts of a throwaway endpoint of his own (its MEP's and its
 * UEP's), and Alice's second UEP holds its own; each tries to finish, start or
 * silence what is Alice's. Nothing they send is stored, every refusal is
 * logged with the account, and the legitimate senders still get through.
 */
import {
  endpointBrokerUser,
  HEARTBEATS_EXCHANGE,
  type HeartbeatMessage,
  heartbeatsRoutingKey,
  RESULTS_EXCHANGE,
  type RegisterEndpointResponse,
  type ResultBatchMessage,
  type ResultMessage,
  resultsRoutingKey,
  type TaskStatusMessage,
  type TaskStatusResponse,
  uepBrokerUser,
} from "@conduit/protocol";
import amqp from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningService } from "../src/service.js";
import {
  deleteUsers,
  MANAGEMENT_URL,
  managementReachable,
  RestUser,
  startCommands,
  suiteTitle,
  userExists,
} from "./broker.helpers.js";
import { startTestService, type TestService } from "./helpers/service.js";

/** Users the tests made (global in RabbitMQ, unlike the vhosts they live in). */
const users = new Set<string>();

/**
 * Publishes one message on a connection of `url`'s account, with that account
 * as user-id (or none, `userId: null`); false when the broker refused it
 * (topic permissions may stop a forgery before any consumer sees it).
 */
async function publishAs(
  url: string,
  exchange: string,
  routingKey: string,
  message: object,
  { userId = decodeURIComponent(new URL(url).username) }: { userId?: string | null } = {},
): Promise<boolean> {
  const connection = await amqp.connect(url);
  connection.on("error", () => undefined);
  try {
    const channel = await connection.createConfirmChannel();
    channel.on("error", () => undefined);
    const options = { persistent: true, ...(userId === null ? {} : { userId }) };
    return await new Promise<boolean>((resolve) => {
      channel.once("close", () => resolve(false));
      channel.publish(exchange, routingKey, Buffer.from(JSON.stringify(message)), options, (err) => resolve(!err));
    });
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/** The warn lines the service logged (pino JSON on stderr), by message. */
function captureLogs(): { lines: string[]; restore(): void } {
  const lines: string[] = [];
  const original = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    const text = String(chunk);
    for (const line of text.split("\n")) {
      try {
        const msg = (JSON.parse(line) as { msg?: unknown }).msg;
        if (typeof msg === "string") lines.push(msg);
      } catch {
        // not a log line
      }
    }
    return (original as (c: unknown, ...r: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stderr.write;
  return { lines, restore: () => (process.stderr.write = original) };
}

describe.skipIf(!managementReachable)(suiteTitle("every consumer checks who published"), () => {
  let started: TestService;
  let service: RunningService;
  let logs: ReturnType<typeof captureLogs>;
  let alice: RestUser;
  let bob: RestUser;
  let aliceEndpoint: RegisterEndpointResponse;
  let bobEndpoint: RegisterEndpointResponse;
  /** Alice's tasks: `victim` and `sentinel` routed to her UEP one, `pending` too (never run), `other` to UEP two. */
  const task = { victim: "", sentinel: "", pending: "" };
  /** Broker URLs of Alice's two UEPs and of Bob's UEP, as their start commands carried them. */
  const url = { aliceOne: "", aliceTwo: "", bob: "" };
  const uep = { aliceOne: "", aliceTwo: "", bob: "" };

  const taskState = (id: string) => alice.call<TaskStatusResponse>("GET", `/tasks/${id}`);
  const refusedFrom = (account: string) =>
    logs.lines.filter((l) => l.startsWith("Refused ") && l.includes(`sent by broker account ${account};`));

  beforeAll(async () => {
    logs = captureLogs();
    started = await startTestService({ amqpManagementUrl: MANAGEMENT_URL, logLevel: "warn" });
    service = started.value;
    alice = new RestUser(service.url, (await service.createIdentity("alice@example.org")).token);
    bob = new RestUser(service.url, (await service.createIdentity("bob@example.org")).token);
    aliceEndpoint = await alice.registerEndpoint("alice-ep");
    bobEndpoint = await bob.registerEndpoint("bob-throwaway");
    users.add(endpointBrokerUser(aliceEndpoint.endpoint_id)).add(endpointBrokerUser(bobEndpoint.endpoint_id));
    const aliceFunction = await alice.registerFunction();
    const one = { user_endpoint_config: { which: "one" } };
    const victim = await alice.submit(aliceEndpoint.endpoint_id, aliceFunction, one);
    const sentinel = await alice.submit(aliceEndpoint.endpoint_id, aliceFunction, one);
    const pending = await alice.submit(aliceEndpoint.endpoint_id, aliceFunction, one);
    const two = await alice.submit(aliceEndpoint.endpoint_id, aliceFunction, {
      user_endpoint_config: { which: "two" },
    });
    const bobs = await bob.submit(bobEndpoint.endpoint_id, await bob.registerFunction());
    [task.victim, task.sentinel, task.pending] = [victim, sentinel, pending].map((s) => s.task_ids[0] as string);
    uep.aliceOne = victim.uep_id;
    uep.aliceTwo = two.uep_id;
    uep.bob = bobs.uep_id;
    expect(new Set(Object.values(uep)).size).toBe(3);
    expect(sentinel.uep_id).toBe(uep.aliceOne);
    for (const id of Object.values(uep)) users.add(uepBrokerUser(id));
    const urlOf = async (endpoint: RegisterEndpointResponse, uepId: string) => {
      const found = (await startCommands(endpoint)).find((c) => c.uepId === uepId)?.amqpUrl;
      if (!found) throw new Error(`No start command with a broker URL for UEP ${uepId}.`);
      return found;
    };
    const aliceCommands = await startCommands(aliceEndpoint);
    url.aliceOne = aliceCommands.find((c) => c.uepId === uep.aliceOne)?.amqpUrl ?? "";
    url.aliceTwo = aliceCommands.find((c) => c.uepId === uep.aliceTwo)?.amqpUrl ?? "";
    url.bob = await urlOf(bobEndpoint, uep.bob);
    expect(url.aliceOne && url.aliceTwo).toBeTruthy();
  });

  afterAll(async () => {
    logs?.restore();
    await started?.dispose();
    await deleteUsers(users);
  });

  it("takes a task's result or running report only from its own UEP's or endpoint's account", async () => {
    const aliceId = aliceEndpoint.endpoint_id;
    const bobId = bobEndpoint.endpoint_id;
    const aliceKey = resultsRoutingKey(aliceId);
    const running = (taskIds: string[], uepId: string): TaskStatusMessage => ({
      v: 1,
      kind: "task_status",
      endpointId: aliceId,
      uepId,
      state: "running",
      taskIds,
      sentAt: Date.now(),
    });
    const result = (taskId: string, data: string, over: Partial<ResultMessage> = {}): ResultMessage => ({
      v: 1,
      kind: "result",
      taskId,
      endpointId: aliceId,
      uepId: uep.aliceOne,
      state: "success",
      result: { strategy: "conduit.JSONData", data },
      completedAt: Date.now(),
      ...over,
    });

    // Alice's UEP one reports its task running: the legitimate path.
    expect(await publishAs(url.aliceOne, RESULTS_EXCHANGE, aliceKey, running([task.victim], uep.aliceOne))).toBe(true);
    await expect.poll(async () => (await taskState(task.victim)).state).toBe("running");

    // Alice's UEP two reports UEP one's task running: refused.
    await publishAs(url.aliceTwo, RESULTS_EXCHANGE, aliceKey, running([task.pending], uep.aliceTwo));
    // Bob's UEP account finishes Alice's running task: under his endpoint's key with Alice's
    // endpoint in the body, with his own endpoint in the body, under Alice's key, in a batch.
    await publishAs(url.bob, RESULTS_EXCHANGE, resultsRoutingKey(bobId), result(task.victim, "666"));
    await publishAs(
      url.bob,
      RESULTS_EXCHANGE,
      resultsRoutingKey(bobId),
      result(task.victim, "666", { endpointId: bobId, uepId: uep.bob }),
    );
    await publishAs(url.bob, RESULTS_EXCHANGE, aliceKey, result(task.victim, "666", { uepId: uep.bob }));
    const batch: ResultBatchMessage = { v: 1, kind: "results", results: [result(task.victim, "666")] };
    await publishAs(url.bob, RESULTS_EXCHANGE, aliceKey, batch);
    // Alice's UEP two finishes a task routed to UEP one.
    await publishAs(url.aliceTwo, RESULTS_EXCHANGE, aliceKey, result(task.victim, "666", { uepId: uep.aliceTwo }));
    // The right account, but no user-id: nothing proves who sent it.
    await publishAs(url.aliceOne, RESULTS_EXCHANGE, aliceKey, result(task.victim, "666"), { userId: null });

    // Published after the forgeries: once it is stored, they were all handled.
    expect(await publishAs(url.aliceOne, RESULTS_EXCHANGE, aliceKey, result(task.sentinel, "7"))).toBe(true);
    await expect.poll(async () => (await taskState(task.sentinel)).state).toBe("success");

    const untouched = await taskState(task.victim);
    expect(untouched.state).toBe("running");
    expect(untouched.result).toBeUndefined();
    expect((await taskState(task.pending)).state).toBe("waiting-for-endpoint");
    // Each refusal logged with the account (the first per account; the rest are counted).
    await expect.poll(() => refusedFrom(uepBrokerUser(uep.aliceTwo)).length).toBeGreaterThan(0);
    expect(refusedFrom(uepBrokerUser(uep.aliceTwo))[0]).toBe(
      `Refused a running report for task ${task.pending}, which it may not report, sent by broker account ${uepBrokerUser(uep.aliceTwo)}; it was dropped.`,
    );
    expect(refusedFrom(uepBrokerUser(uep.bob))).toEqual([
      `Refused a result for task ${task.victim} naming endpoint ${aliceId} under the routing key of endpoint ${bobId}, sent by broker account ${uepBrokerUser(uep.bob)}; it was dropped.`,
    ]);
    expect(refusedFrom("(no user-id)")).toHaveLength(1);

    // The endpoint's own account may fail a task (as an MEP does when a UEP cannot start).
    const failure = { code: "UEP_START_FAILED", name: "UepStartError", message: "no such template" };
    const failed = result(task.pending, "", { state: "failed", result: undefined, error: failure });
    expect(await publishAs(aliceEndpoint.amqp.url, RESULTS_EXCHANGE, aliceKey, failed)).toBe(true);
    await expect.poll(async () => (await taskState(task.pending)).state).toBe("failed");

    // The real result still gets through: the service serves, and no forgery was stored before it.
    expect(await publishAs(url.aliceOne, RESULTS_EXCHANGE, aliceKey, result(task.victim, "3"))).toBe(true);
    await expect.poll(async () => (await taskState(task.victim)).state).toBe("success");
    expect((await taskState(task.victim)).result).toEqual({ strategy: "conduit.JSONData", data: "3" });
    expect((await fetch(`${service.url}/healthz`)).status).toBe(200);
  });

  it("takes a heartbeat only from the account of the MEP or UEP it names", async () => {
    const aliceId = aliceEndpoint.endpoint_id;
    const bobId = bobEndpoint.endpoint_id;
    const status = async (id: string) =>
      (await (id === aliceId ? alice : bob).call<{ status: string }>("GET", `/endpoints/${id}/status`)).status;
    const mepBeat = (endpointId: string, period: number): HeartbeatMessage => ({
      v: 1,
      kind: "heartbeat",
      role: "mep",
      endpointId,
      period,
      sentAt: Date.now(),
    });
    const uepBeat = (uepId: string, period: number): HeartbeatMessage => ({
      ...mepBeat(aliceId, period),
      role: "uep",
      uepId,
    });

    expect(
      await publishAs(aliceEndpoint.amqp.url, HEARTBEATS_EXCHANGE, heartbeatsRoutingKey(aliceId), mepBeat(aliceId, 30)),
    ).toBe(true);
    await expect.poll(() => status(aliceId)).toBe("online");

    // Bob's MEP account says Alice's endpoint is shutting down: under his key, then under hers.
    await publishAs(bobEndpoint.amqp.url, HEARTBEATS_EXCHANGE, heartbeatsRoutingKey(bobId), mepBeat(aliceId, 0));
    await publishAs(bobEndpoint.amqp.url, HEARTBEATS_EXCHANGE, heartbeatsRoutingKey(aliceId), mepBeat(aliceId, 0));
    // ...and that Alice's UEP one stopped (which would delete its broker account).
    await publishAs(bobEndpoint.amqp.url, HEARTBEATS_EXCHANGE, heartbeatsRoutingKey(aliceId), uepBeat(uep.aliceOne, 0));
    // Alice's own UEP two speaks for her MEP, and for UEP one.
    await publishAs(url.aliceTwo, HEARTBEATS_EXCHANGE, heartbeatsRoutingKey(aliceId), mepBeat(aliceId, 0));
    await publishAs(url.aliceTwo, HEARTBEATS_EXCHANGE, heartbeatsRoutingKey(aliceId), uepBeat(uep.aliceOne, 0));
    // Alice's MEP account without user-id.
    await publishAs(aliceEndpoint.amqp.url, HEARTBEATS_EXCHANGE, heartbeatsRoutingKey(aliceId), mepBeat(aliceId, 0), {
      userId: null,
    });

    // Heartbeats are refused as they arrive, in order: once Bob's own beat counts, the forgeries were seen.
    expect(
      await publishAs(bobEndpoint.amqp.url, HEARTBEATS_EXCHANGE, heartbeatsRoutingKey(bobId), mepBeat(bobId, 30)),
    ).toBe(true);
    await expect.poll(() => status(bobId)).toBe("online");
    expect(await status(aliceId)).toBe("online");
    expect(await userExists(uepBrokerUser(uep.aliceOne))).toBe(true);
    expect(refusedFrom(endpointBrokerUser(bobId))).toEqual([
      `Refused a heartbeat of endpoint ${aliceId}: it came under the routing key of endpoint ${bobId}, sent by broker account ${endpointBrokerUser(bobId)}; it was dropped.`,
    ]);

    // Alice's MEP itself says goodbye: that counts.
    expect(
      await publishAs(aliceEndpoint.amqp.url, HEARTBEATS_EXCHANGE, heartbeatsRoutingKey(aliceId), mepBeat(aliceId, 0)),
    ).toBe(true);
    await expect.poll(() => status(aliceId)).toBe("offline");
  });
});
