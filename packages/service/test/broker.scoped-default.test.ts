/**
 * Scoped broker accounts are the default: a service given only `--amqp-url`
 * finds the management API beside it, refuses to start when it cannot use
 * it (never falling back to one shared account), answers 503 when it fails
 * later, and limits each endpoint's and UEP's account, through topic
 * permissions, to its own endpoint's routing keys: a UEP account of one
 * endpoint cannot put a result or a heartbeat into another endpoint's stream.
 * Real RabbitMQ and its management API.
 */
import { randomBytes, randomUUID } from "node:crypto";
import {
  HEARTBEATS_EXCHANGE,
  type HeartbeatMessage,
  heartbeatsRoutingKey,
  RESULTS_EXCHANGE,
  type RegisterEndpointResponse,
  type ResultMessage,
  resultsRoutingKey,
  type SubmitResponse,
  serializeJson,
  taskGroupBrokerUser,
  uepBrokerUser,
} from "@conduit/protocol";
import amqp from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../../scripts/local-stack.mjs";
import { managementUrlFor, vhostOf } from "../src/broker/management-api.js";
import { type RunningService, startService } from "../src/service.js";
import { compileOptions } from "../src/service-options.js";
import {
  deleteUsers,
  eventually,
  makeBrokerUser,
  management,
  managementPut,
  managementReachable,
  RestUser,
  replyCode,
  suiteTitle,
  uepUrlHandedOut,
  userExists,
} from "./broker.helpers.js";
import { createVhost } from "./helpers/broker.js";
import { createPostgresDatabase } from "./helpers/databases.js";
import { TEST_SERVICE_DEFAULTS } from "./helpers/service.js";

/** Users the tests made (global in RabbitMQ, unlike the vhosts they live in). */
const users = new Set<string>();

/** Every management failure, at start (an exception) and later (503), is one sentence naming both fixes. */
function expectFixSentence(message: string): void {
  expect(message).toContain("`sudo rabbitmq-plugins enable rabbitmq_management`");
  expect(message).toContain("--amqp-management-url");
  // One sentence, and no password in it.
  expect(message.trimEnd().match(/\.(\s|$)/g)).toHaveLength(1);
}

describe("the management API's address", () => {
  it("is derived from --amqp-url: its host, 15672 (https on 15671 with amqps), its login", () => {
    expect(managementUrlFor("amqp://svc:s%40cret@broker.example.org:5672/conduit")).toBe(
      "http://svc:s%40cret@broker.example.org:15672",
    );
    expect(managementUrlFor("amqps://svc:pw@broker.example.org:443/conduit")).toBe(
      "https://svc:pw@broker.example.org:15671",
    );
    // amqplib logs in as guest/guest when the URL names nobody.
    expect(managementUrlFor("amqp://127.0.0.1")).toBe("http://guest:guest@127.0.0.1:15672");
    expect(vhostOf("amqp://127.0.0.1")).toBe("/");
    expect(vhostOf("amqp://127.0.0.1/a%2Fb")).toBe("a/b");
  });

  it("is in the config unless the account is shared, and both at once are refused", () => {
    const scoped = compileOptions({ amqpUrl: "amqp://svc:pw@10.0.0.5:5672/conduit" });
    expect(scoped.sharedBrokerAccount).toBe(false);
    expect(scoped.amqpManagementUrl).toBe("http://svc:pw@10.0.0.5:15672");
    expect(compileOptions({ amqpManagementUrl: "http://a:b@mgmt:8080" }).amqpManagementUrl).toBe(
      "http://a:b@mgmt:8080",
    );
    const shared = compileOptions({ sharedBrokerAccount: true });
    expect(shared.sharedBrokerAccount).toBe(true);
    expect(shared.amqpManagementUrl).toBeUndefined();
    expect(() => compileOptions({ sharedBrokerAccount: true, amqpManagementUrl: "http://a:b@mgmt:15672" })).toThrow(
      "amqpManagementUrl (scoped broker accounts) and sharedBrokerAccount (one account for everyone) contradict each other; pass only one of --amqp-management-url and --shared-broker-account.",
    );
  });
});

describe.skipIf(!managementReachable)(suiteTitle("scoped broker accounts by default"), () => {
  let vhost: { value: string; dispose(): Promise<void> };
  let database: { value: string; dispose(): Promise<void> };
  const services: RunningService[] = [];

  beforeAll(async () => {
    vhost = await createVhost();
    // Postgres: a first PGlite start spends seconds in initdb; the store does not matter here.
    database = await createPostgresDatabase();
  }, 60_000);

  afterAll(async () => {
    for (const s of services) await s.close();
    await database?.dispose();
    await vhost?.dispose();
    await deleteUsers(users);
  });

  const start = async (options: Parameters<typeof startService>[0] = {}) => {
    const service = await startService({
      ...TEST_SERVICE_DEFAULTS,
      databaseUrl: database.value,
      amqpUrl: vhost.value,
      ...options,
    });
    services.push(service);
    return service;
  };

  it("refuses to start when nothing answers at the management URL", async () => {
    const port = await freePort();
    const failure = await start({ amqpManagementUrl: `http://guest:guest@127.0.0.1:${port}` }).catch((e: Error) => e);
    expect(failure).toBeInstanceOf(Error);
    expect((failure as { code?: string }).code).toBe("BROKER_ACCOUNTS_FAILED");
    expect((failure as Error).message).toMatch(
      /^The service cannot use the RabbitMQ management API at http:\/\/127\.0\.0\.1:\d+ /,
    );
    expect((failure as Error).message).toContain("ECONNREFUSED");
    expectFixSentence((failure as Error).message);
  });

  it("refuses to start when the --amqp-url login it derives is no administrator", async () => {
    const user = `conduit-test-plain-${randomBytes(4).toString("hex")}`;
    users.add(user);
    // Enough for AMQP on the vhost and to log in to the management API, not to make accounts.
    const amqpUrl = await makeBrokerUser(user, "plain-secret", "management", vhostOf(vhost.value));
    const failure = await start({ amqpUrl }).catch((e: Error) => e);
    expect((failure as { code?: string }).code).toBe("BROKER_ACCOUNTS_FAILED");
    expect((failure as Error).message).toContain(`its user ${user} is not tagged administrator`);
    expect((failure as Error).message).not.toContain("plain-secret");
    expectFixSentence((failure as Error).message);
  });

  it("answers 503 with the same sentence when the management API fails after start", async () => {
    const admin = `conduit-test-admin-${randomBytes(4).toString("hex")}`;
    users.add(admin);
    await makeBrokerUser(admin, "first-secret", "administrator", vhostOf(vhost.value));
    const service = await start({ amqpManagementUrl: `http://${admin}:first-secret@127.0.0.1:15672` });
    const { token } = await service.createIdentity(`broken-${randomUUID()}@example.org`);
    // The administrator's password changes under the running service.
    await managementPut(`/api/users/${admin}`, { password: "second-secret", tags: "administrator" });
    const response = await fetch(`${service.url}/v1/endpoints`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "ep" }),
    });
    const body = (await response.json()) as { statusCode: number; code: string; message: string };
    expect(response.status).toBe(503);
    expect(body).toMatchObject({ statusCode: 503, code: "BROKER_ACCOUNTS_FAILED" });
    expect(body.message).toContain(`it refused the login of ${admin} (401)`);
    expect(body.message).not.toContain("secret");
    expectFixSentence(body.message);
  });

  describe("given only --amqp-url", () => {
    let service: RunningService;
    let alice: RestUser;
    let bob: RestUser;
    let aliceEndpoint: RegisterEndpointResponse;
    let bobEndpoint: RegisterEndpointResponse;
    let aliceTask: SubmitResponse;
    let bobTask: SubmitResponse;
    let bobUepUrl: string;

    beforeAll(async () => {
      service = await start();
      alice = new RestUser(service.url, (await service.createIdentity("alice@example.org")).token);
      bob = new RestUser(service.url, (await service.createIdentity("bob@example.org")).token);
      aliceEndpoint = await alice.registerEndpoint("alice-ep");
      bobEndpoint = await bob.registerEndpoint("bob-ep");
      aliceTask = await alice.submit(aliceEndpoint.endpoint_id, await alice.registerFunction());
      bobTask = await bob.submit(bobEndpoint.endpoint_id, await bob.registerFunction());
      for (const r of [aliceTask, bobTask])
        users.add(taskGroupBrokerUser(r.task_group_id)).add(uepBrokerUser(r.uep_id));
      bobUepUrl = await uepUrlHandedOut(bobEndpoint, bobTask.uep_id);
    }, 60_000);

    it("finds the management API (guest on 127.0.0.1:15672) and hands out scoped accounts", () => {
      expect(service.config.sharedBrokerAccount).toBe(false);
      expect(service.config.amqpManagementUrl).toBe("http://guest:guest@127.0.0.1:15672");
      expect(decodeURIComponent(new URL(aliceEndpoint.amqp.url).username)).toBe(
        `conduit-ep-${aliceEndpoint.endpoint_id}`,
      );
      expect(decodeURIComponent(new URL(aliceTask.amqp.url).username)).toBe(
        taskGroupBrokerUser(aliceTask.task_group_id),
      );
      expect(decodeURIComponent(new URL(bobUepUrl).username)).toBe(uepBrokerUser(bobTask.uep_id));
    });

    it("refuses a UEP or endpoint account publishing under another endpoint's routing keys; nothing arrives", async () => {
      // Everything published to the two exchanges, as the service's own account sees it.
      const spy = await amqp.connect(vhost.value);
      const seen: string[] = [];
      try {
        const channel = await spy.createChannel();
        const { queue } = await channel.assertQueue("", { exclusive: true });
        await channel.bindQueue(queue, RESULTS_EXCHANGE, "#");
        await channel.bindQueue(queue, HEARTBEATS_EXCHANGE, "#");
        await channel.consume(queue, (m) => m && seen.push(m.fields.routingKey), { noAck: true });

        const forgedResult: ResultMessage = {
          v: 1,
          kind: "result",
          taskId: aliceTask.task_ids[0],
          endpointId: aliceEndpoint.endpoint_id,
          uepId: aliceTask.uep_id,
          state: "success",
          result: serializeJson("chosen by bob"),
          completedAt: Date.now(),
        };
        const forgedBeat: HeartbeatMessage = {
          v: 1,
          kind: "heartbeat",
          role: "mep",
          endpointId: aliceEndpoint.endpoint_id,
          period: 0,
          sentAt: Date.now(),
        };
        const publishAs = (url: string, exchange: string, key: string, message: unknown) =>
          replyCode(url, async (ch) => {
            ch.publish(exchange, key, Buffer.from(JSON.stringify(message)), {
              userId: decodeURIComponent(new URL(url).username),
              persistent: true,
            });
            // The refusal closes the channel asynchronously; round trips surface it.
            await ch.checkExchange(exchange);
            await new Promise((resolve) => setTimeout(resolve, 200));
            await ch.checkExchange(exchange);
          });
        const aliceResults = resultsRoutingKey(aliceEndpoint.endpoint_id);
        const aliceBeats = heartbeatsRoutingKey(aliceEndpoint.endpoint_id);
        // Bob's UEP account, and his endpoint's: 403 ACCESS_REFUSED under Alice's endpoint's keys.
        expect(await publishAs(bobUepUrl, RESULTS_EXCHANGE, aliceResults, forgedResult)).toBe(403);
        expect(await publishAs(bobUepUrl, HEARTBEATS_EXCHANGE, aliceBeats, forgedBeat)).toBe(403);
        expect(await publishAs(bobEndpoint.amqp.url, RESULTS_EXCHANGE, aliceResults, forgedResult)).toBe(403);
        expect(await publishAs(bobEndpoint.amqp.url, HEARTBEATS_EXCHANGE, aliceBeats, forgedBeat)).toBe(403);
        // Nor under a key of no endpoint, which a `#` binding would still deliver.
        expect(await publishAs(bobUepUrl, RESULTS_EXCHANGE, "results", forgedResult)).toBe(403);

        // Under his own endpoint's keys it goes through (a body the service drops), and the spy sees it.
        const bobResults = resultsRoutingKey(bobEndpoint.endpoint_id);
        expect(await publishAs(bobUepUrl, RESULTS_EXCHANGE, bobResults, { v: 1, kind: "nothing" })).toBe(0);
        await eventually("the spy sees Bob's own publish", async () => seen.includes(bobResults));
        expect(seen).toEqual([bobResults]);
      } finally {
        await spy.close().catch(() => undefined);
      }
      // Alice's task and endpoint are as they were.
      const task = await service.store.getTask(aliceTask.task_ids[0]);
      expect(task?.state).toBe("waiting-for-endpoint");
      expect((await service.store.getEndpoint(aliceEndpoint.endpoint_id))?.lastHeartbeat).toBeNull();
    });

    it("sets each endpoint and UEP account's topic permissions to its own keys, reading none", async () => {
      const vhostName = encodeURIComponent(vhostOf(vhost.value));
      for (const user of [`conduit-ep-${bobEndpoint.endpoint_id}`, uepBrokerUser(bobTask.uep_id)]) {
        const { status, body } = await management(`/api/topic-permissions/${vhostName}/${encodeURIComponent(user)}`);
        expect(status).toBe(200);
        const byExchange = Object.fromEntries(
          (body as Array<{ exchange: string; write: string; read: string }>).map((p) => [p.exchange, p]),
        );
        const id = bobEndpoint.endpoint_id;
        expect(byExchange[RESULTS_EXCHANGE]).toMatchObject({ write: `^(${id}\\.results)$`, read: "^$" });
        expect(byExchange[HEARTBEATS_EXCHANGE]).toMatchObject({ write: `^(${id}\\.heartbeats)$`, read: "^$" });
      }
      expect(await userExists(uepBrokerUser(bobTask.uep_id))).toBe(true);
    });
  });
});
