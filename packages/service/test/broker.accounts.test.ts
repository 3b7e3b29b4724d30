/**
 * The lifecycle of scoped broker accounts against the real RabbitMQ and its
 * management API: task-group accounts that read only their group's queue,
 * passwords derived from the store's secret (the same from another service on
 * the same store), group queues that expire after the retention, UEP accounts
 * deleted when the UEP stops (not when it is being started again), and the
 * sweeps.
 */
import { randomUUID } from "node:crypto";
import {
  commandQueue,
  HEARTBEATS_EXCHANGE,
  type HeartbeatMessage,
  heartbeatsRoutingKey,
  type RegisterEndpointResponse,
  type SubmitResponse,
  TASKS_EXCHANGE,
  taskGroupBrokerUser,
  taskGroupQueueOptions,
  taskGroupResultQueue,
  uepBrokerUser,
  uepTaskQueue,
} from "@conduit/protocol";
import type { FastifyBaseLogger } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BrokerAccountSweeper } from "../src/broker/broker-account-sweeper.js";
import { BrokerAccounts } from "../src/broker/broker-accounts.js";
import { type RunningService, startService } from "../src/service.js";
import {
  deleteUsers,
  eventually,
  MANAGEMENT_URL,
  management,
  managementReachable,
  RestUser,
  replyCode,
  suiteTitle,
  uepUrlHandedOut,
  userExists,
} from "./broker.helpers.js";
import { createVhost, openChannel } from "./helpers/broker.js";
import { createPostgresDatabase } from "./helpers/databases.js";
import { startTestService, TEST_SERVICE_DEFAULTS, type TestService } from "./helpers/service.js";

const RETENTION = "90s";
const RETENTION_MS = 90_000;

/** Users the tests made (global in RabbitMQ, unlike the vhosts they live in). */
const users = new Set<string>();

const silentLogger = {
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
} as unknown as FastifyBaseLogger;

function userOf(url: string): string {
  return decodeURIComponent(new URL(url).username);
}

describe.skipIf(!managementReachable)(suiteTitle("broker account lifecycle"), () => {
  afterAll(() => deleteUsers(users));

  describe("on one service", () => {
    let started: TestService;
    let service: RunningService;
    let alice: RestUser;
    let bob: RestUser;
    let aliceEndpoint: RegisterEndpointResponse;
    let aliceFunction: string;
    let a: SubmitResponse;
    let b: SubmitResponse;
    /** A BrokerAccounts of the test's own, with the service's secret: another replica. */
    let replica: BrokerAccounts;

    beforeAll(async () => {
      // Postgres: a first PGlite start spends seconds in initdb; the store does not matter here.
      started = await startTestService({ amqpManagementUrl: MANAGEMENT_URL, resultRetention: RETENTION }, "postgres");
      service = started.value;
      alice = new RestUser(service.url, (await service.createIdentity("alice@example.org")).token);
      bob = new RestUser(service.url, (await service.createIdentity("bob@example.org")).token);
      aliceEndpoint = await alice.registerEndpoint("alice-ep");
      const bobEndpoint = await bob.registerEndpoint("bob-ep");
      aliceFunction = await alice.registerFunction();
      a = await alice.submit(aliceEndpoint.endpoint_id, aliceFunction);
      b = await bob.submit(bobEndpoint.endpoint_id, await bob.registerFunction());
      for (const r of [a, b]) users.add(taskGroupBrokerUser(r.task_group_id)).add(uepBrokerUser(r.uep_id));
      // Asking again returns the secret the service's start made, not this one.
      const secret = await service.store.serviceSecret("broker-accounts", () => "unused");
      expect(secret).not.toBe("unused");
      replica = new BrokerAccounts(MANAGEMENT_URL, started.amqpUrl, secret);
    }, 90_000);

    afterAll(() => started?.dispose());

    it("gives a task group's credentials read access to its own result queue only", async () => {
      expect(userOf(a.amqp.url)).toBe(taskGroupBrokerUser(a.task_group_id));
      expect(userOf(b.amqp.url)).toBe(taskGroupBrokerUser(b.task_group_id));
      expect(new URL(a.amqp.url).pathname).toBe(new URL(started.amqpUrl).pathname);
      const queueA = a.result_queue;
      expect(queueA).toBe(taskGroupResultQueue(a.task_group_id));

      // The group's own credentials: passive check and consume.
      expect(
        await replyCode(a.amqp.url, async (ch) => {
          await ch.checkQueue(queueA);
          await ch.consume(queueA, () => undefined);
        }),
      ).toBe(0);
      // Another identity's group credentials: ACCESS_REFUSED on A's queue.
      expect(await replyCode(b.amqp.url, (ch) => ch.consume(queueA, () => undefined))).toBe(403);
      expect(await replyCode(b.amqp.url, (ch) => ch.get(queueA))).toBe(403);
      // A passive declare needs no permission in RabbitMQ: another group's credentials learn that the
      // queue exists and how many results wait in it, never the results.
      expect(await replyCode(b.amqp.url, (ch) => ch.checkQueue(queueA))).toBe(0);
      // Nothing else: no declare (even of its own queue), no task queue, no publish.
      expect(await replyCode(a.amqp.url, (ch) => ch.assertQueue(queueA, taskGroupQueueOptions(RETENTION_MS)))).toBe(
        403,
      );
      expect(
        await replyCode(a.amqp.url, (ch) => ch.consume(uepTaskQueue(aliceEndpoint.endpoint_id, a.uep_id), () => 0)),
      ).toBe(403);
      expect(
        await replyCode(a.amqp.url, async (ch) => {
          ch.publish(TASKS_EXCHANGE, queueA, Buffer.from("{}"));
          // The refusal closes the channel asynchronously; round trips surface it.
          await ch.checkQueue(queueA);
          await new Promise((resolve) => setTimeout(resolve, 200));
          await ch.checkQueue(queueA);
        }),
      ).toBe(403);
    });

    it("derives the same task group and UEP URLs on another replica", async () => {
      expect(await replica.taskGroupUrl(a.task_group_id)).toBe(a.amqp.url);
      expect(await replica.uepUrl(aliceEndpoint.endpoint_id, a.uep_id)).toBe(
        await uepUrlHandedOut(aliceEndpoint, a.uep_id),
      );
      // A second submit to the same group answers with the same credentials.
      const again = await alice.submit(aliceEndpoint.endpoint_id, aliceFunction, { task_group_id: a.task_group_id });
      expect(again.amqp.url).toBe(a.amqp.url);
    });

    it("declares group result queues with x-expires = --result-retention", async () => {
      const { status, body } = await management(
        `/api/queues/${encodeURIComponent(new URL(started.amqpUrl).pathname.slice(1))}/${encodeURIComponent(a.result_queue)}`,
      );
      expect(status).toBe(200);
      expect((body as { arguments: Record<string, unknown> }).arguments).toEqual({ "x-expires": RETENTION_MS });
    });

    it("keeps serving a group whose queue was declared with another retention", async () => {
      const group = randomUUID();
      const queue = taskGroupResultQueue(group);
      const vhostName = encodeURIComponent(new URL(started.amqpUrl).pathname.slice(1));
      // As a service with --result-retention 60s left it.
      const earlier = await openChannel(started.amqpUrl);
      try {
        await earlier.channel.assertQueue(queue, taskGroupQueueOptions(60_000));
      } finally {
        await earlier.close();
      }
      const submitted = await alice.submit(aliceEndpoint.endpoint_id, aliceFunction, { task_group_id: group });
      users.add(taskGroupBrokerUser(group));
      expect(submitted.task_group_id).toBe(group);
      const { body } = await management(`/api/queues/${vhostName}/${encodeURIComponent(queue)}`);
      expect((body as { arguments: Record<string, unknown> }).arguments).toEqual({ "x-expires": 60_000 });
      // It is bound for the group's results, and the refusal took nothing down: the next submit goes through.
      const { body: bindings } = await management(`/api/queues/${vhostName}/${encodeURIComponent(queue)}/bindings`);
      expect((bindings as Array<{ source: string }>).map((x) => x.source)).toContain(TASKS_EXCHANGE);
      const next = await alice.submit(aliceEndpoint.endpoint_id, aliceFunction);
      users.add(taskGroupBrokerUser(next.task_group_id));
      const { body: nextQueue } = await management(`/api/queues/${vhostName}/${encodeURIComponent(next.result_queue)}`);
      expect((nextQueue as { arguments: Record<string, unknown> }).arguments).toEqual({ "x-expires": RETENTION_MS });
    });

    it("deletes a UEP's account at its last heartbeat, but not when a start was handed out after it", async () => {
      // Published on `url`'s account with that account as user-id, as a UEP does.
      const beat = async (url: string, uepId: string, period: number, sentAt: number) => {
        const message: HeartbeatMessage = {
          v: 1,
          kind: "heartbeat",
          role: "uep",
          endpointId: aliceEndpoint.endpoint_id,
          uepId,
          period,
          sentAt,
        };
        const ch = await openChannel(url);
        try {
          ch.channel.publish(
            HEARTBEATS_EXCHANGE,
            heartbeatsRoutingKey(aliceEndpoint.endpoint_id),
            Buffer.from(JSON.stringify(message)),
            { userId: decodeURIComponent(new URL(url).username) || "guest" },
          );
          // A round trip after the publish; the broker closes this connection at
          // once if the heartbeat gets its own account deleted.
          await ch.channel.checkQueue(commandQueue(aliceEndpoint.endpoint_id)).catch(() => undefined);
        } finally {
          await ch.close();
        }
      };
      const lastSeen = async (uepId: string) => (await service.store.getUep(uepId))?.lastSeen?.getTime() ?? 0;
      const before = Date.now();
      const submitted = await alice.submit(aliceEndpoint.endpoint_id, aliceFunction, {
        user_endpoint_config: { which: "lifecycle" },
      });
      const user = uepBrokerUser(submitted.uep_id);
      users.add(user);
      const firstUrl = await uepUrlHandedOut(aliceEndpoint, submitted.uep_id);
      expect(await userExists(user)).toBe(true);

      // A last heartbeat sent before the start was handed out: the UEP is starting again, the account stays.
      await beat(firstUrl, submitted.uep_id, 0, before - 1_000);
      // The account is handled before the heartbeat is stored: once last_seen is set, the decision is made.
      await eventually("the stale heartbeat is stored", async () => (await lastSeen(submitted.uep_id)) > 0);
      expect(await userExists(user)).toBe(true);

      // A last heartbeat from another account (here the public one): refused, neither stored nor acted on.
      const seen = await lastSeen(submitted.uep_id);
      await beat(started.amqpUrl, submitted.uep_id, 0, Date.now());
      // Heartbeats are checked in arrival order: once the UEP's next one is stored, the forged one was refused.
      await beat(firstUrl, submitted.uep_id, 30, Date.now());
      await eventually("the UEP's next heartbeat is stored", async () => (await lastSeen(submitted.uep_id)) > seen);
      expect(await userExists(user)).toBe(true);

      // Its own last heartbeat sent after the hand-out: deleted.
      await beat(firstUrl, submitted.uep_id, 0, Date.now());
      await eventually("the UEP's account is deleted", async () => !(await userExists(user)));

      // The next submit makes it again, with the same derived password.
      await alice.submit(aliceEndpoint.endpoint_id, aliceFunction, { user_endpoint_config: { which: "lifecycle" } });
      expect(await userExists(user)).toBe(true);
      const secondUrl = await uepUrlHandedOut(aliceEndpoint, submitted.uep_id);
      expect(secondUrl).toBe(firstUrl);
      expect(
        await replyCode(secondUrl, (ch) => ch.checkQueue(uepTaskQueue(aliceEndpoint.endpoint_id, submitted.uep_id))),
      ).toBe(0);
    });

    it("deletes the account of a UEP whose heartbeats stopped for 3 periods", async () => {
      const silent = await alice.submit(aliceEndpoint.endpoint_id, aliceFunction, {
        user_endpoint_config: { which: "silent" },
      });
      const alive = await alice.submit(aliceEndpoint.endpoint_id, aliceFunction, {
        user_endpoint_config: { which: "alive" },
      });
      users.add(uepBrokerUser(silent.uep_id)).add(uepBrokerUser(alive.uep_id));
      // This sweeper's accounts handed nothing out: only the heartbeats count.
      const sweeper = new BrokerAccountSweeper(replica, service.store, silentLogger, {
        resultRetentionMs: RETENTION_MS,
      });
      const sentAt = Date.now();
      for (const [uep, period] of [
        [silent.uep_id, 0.01],
        [alive.uep_id, 3_600],
      ] as const) {
        await sweeper.uepHeartbeat({
          v: 1,
          kind: "heartbeat",
          role: "uep",
          endpointId: aliceEndpoint.endpoint_id,
          uepId: uep,
          period,
          sentAt,
        });
        await service.store.recordUepHeartbeat(aliceEndpoint.endpoint_id, uep);
      }
      await eventually("the silent UEP's account is deleted", async () => (await sweeper.deleteSilentUeps()) > 0);
      expect(await userExists(uepBrokerUser(silent.uep_id))).toBe(false);
      expect(await userExists(uepBrokerUser(alive.uep_id))).toBe(true);
      expect(await sweeper.deleteSilentUeps()).toBe(0);
    });

    it("sweeps the accounts of task groups without a submit for the retention", async () => {
      // Made by another replica for a group this store never saw (a submit that failed).
      const stray = randomUUID();
      users.add(taskGroupBrokerUser(stray));
      await new BrokerAccounts(MANAGEMENT_URL, started.amqpUrl, "any secret").taskGroupUrl(stray);
      expect(await userExists(taskGroupBrokerUser(stray))).toBe(true);

      const sweep = (retentionMs: number) =>
        new BrokerAccountSweeper(replica, service.store, silentLogger, { resultRetentionMs: retentionMs });
      expect(await sweep(RETENTION_MS).sweepTaskGroups()).toBe(1);
      expect(await userExists(taskGroupBrokerUser(stray))).toBe(false);
      expect(await userExists(taskGroupBrokerUser(a.task_group_id))).toBe(true);

      // With a 1 ms retention every group is stale: all of them go (the replica handed out A's, long enough ago).
      await eventually("every group account is swept", async () => {
        await sweep(1).sweepTaskGroups();
        return !(await userExists(taskGroupBrokerUser(b.task_group_id)));
      });
      expect(await userExists(taskGroupBrokerUser(b.task_group_id))).toBe(false);
    });
  });

  describe("two services on one Postgres store", () => {
    let vhost: { value: string; dispose(): Promise<void> };
    let database: { value: string; dispose(): Promise<void> };
    let services: RunningService[] = [];

    beforeAll(async () => {
      vhost = await createVhost();
      database = await createPostgresDatabase();
      const start = () =>
        startService({
          ...TEST_SERVICE_DEFAULTS,
          databaseUrl: database.value,
          amqpUrl: vhost.value,
          amqpManagementUrl: MANAGEMENT_URL,
        });
      // Started together: both race to make the secret, and must agree on one.
      services = await Promise.all([start(), start()]);
    }, 90_000);

    afterAll(async () => {
      for (const s of services) await s.close();
      await database?.dispose();
      await vhost?.dispose();
    });

    it("hands out the same UEP and task group passwords from either service", async () => {
      const [one, two] = services;
      const { token } = await one.createIdentity("carol@example.org");
      const viaOne = new RestUser(one.url, token);
      const viaTwo = new RestUser(two.url, token);
      const endpoint = await viaOne.registerEndpoint("shared");
      const fn = await viaOne.registerFunction();
      const first = await viaOne.submit(endpoint.endpoint_id, fn, { user_endpoint_config: { x: 1 } });
      users.add(uepBrokerUser(first.uep_id)).add(taskGroupBrokerUser(first.task_group_id));
      const urlOne = await uepUrlHandedOut(endpoint, first.uep_id);
      const second = await viaTwo.submit(endpoint.endpoint_id, fn, {
        user_endpoint_config: { x: 1 },
        task_group_id: first.task_group_id,
      });
      expect(second.uep_id).toBe(first.uep_id);
      expect(await uepUrlHandedOut(endpoint, first.uep_id)).toBe(urlOne);
      expect(second.amqp.url).toBe(first.amqp.url);
      // And the URL works: the derived password is the account's.
      expect(await replyCode(urlOne, (ch) => ch.checkQueue(uepTaskQueue(endpoint.endpoint_id, first.uep_id)))).toBe(0);
    });
  });
});
