/**
 * Race 1 of the overlapped submit (issue 23): the submit publishes its tasks
 * while it stores them, so a result can reach the service before its task's
 * row exists. The result consumer holds it, unacked, until the row exists,
 * then stores it under the trust rules (the sender must be allowed to report
 * that task) and forwards it; it drops one whose row never comes within its
 * bound, with a log line. A real RabbitMQ vhost, a real PGlite store.
 */
import { randomUUID } from "node:crypto";
import {
  JSON_DATA,
  RESULTS_EXCHANGE,
  RESULTS_QUEUE,
  type ResultMessage,
  resultsRoutingKey,
  taskGroupResultQueue,
} from "@conduit/protocol";
import type { FastifyBaseLogger } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sha256Hex } from "../src/auth/tokens.js";
import { ResultConsumer } from "../src/broker/result-consumer.js";
import { ServiceBroker } from "../src/broker/service-broker.js";
import { openStore } from "../src/store/open-store.js";
import type { Store } from "../src/store/store.js";
import { createVhost, openChannel } from "./helpers/broker.js";
import { createTempDir, type Throwaway } from "./helpers/databases.js";

const HOLD_MS = 1500;

describe("a result that arrives before its task's row", () => {
  const disposers: Array<Throwaway<unknown>> = [];
  const lines: string[] = [];
  let store: Store;
  let broker: ServiceBroker;
  let vhost: string;
  let channel: Awaited<ReturnType<typeof openChannel>>;
  const shared = new Set(["guest"]);

  beforeAll(async () => {
    const dir = await createTempDir();
    disposers.push(dir);
    store = await openStore({ kind: "pglite", dataDir: dir.value });
    const host = await createVhost();
    disposers.push(host);
    vhost = host.value;
    const note = (...args: unknown[]) => lines.push(String(args.find((a) => typeof a === "string") ?? ""));
    const logger = { warn: note, info: note, error: note, debug: note } as unknown as FastifyBaseLogger;
    broker = await ServiceBroker.connect({
      url: vhost,
      logger,
      prefetch: 100,
      initialMaxRetries: 3,
      resultRetentionMs: 600_000,
    });
    // Endpoints publish as guest here: the shared account, allowed to report any task.
    await broker.addConsumer(
      new ResultConsumer(store, broker, logger, { unknownTaskHoldMs: HOLD_MS, sharedAccounts: shared }),
    );
    channel = await openChannel(vhost);
  }, 300_000);

  afterAll(async () => {
    await channel?.close();
    await broker?.stopConsumers();
    await store?.close();
    for (const d of disposers.reverse()) await d.dispose();
  });

  async function fixture() {
    const owner = await store.createIdentity(`owner-${randomUUID()}@example.org`);
    const endpoint = await store.registerEndpoint({
      id: randomUUID(),
      ownerId: owner.id,
      name: "ep",
      multiUser: false,
    });
    const fn = await store.registerFunction(owner.id, { strategy: "conduit.SourceCode", data: "() => 1" });
    return { owner, endpointId: endpoint!.id, functionId: fn.id };
  }

  /** What the submit stores for one task of `f`'s endpoint, as it commits it. */
  function insertTask(f: Awaited<ReturnType<typeof fixture>>, uepId: string, groupId: string, taskId: string) {
    return store.insertTasks({
      ownerId: f.owner.id,
      endpointId: f.endpointId,
      uepId,
      taskGroupId: groupId,
      taskGroupGiven: true,
      uepConfig: {},
      uepRuntime: null,
      published: true,
      tasks: [{ id: taskId, functionId: f.functionId, argsBytes: 2, argsSha256: sha256Hex(JSON_DATA, "[]") }],
    });
  }

  function publishResult(endpointId: string, uepId: string, taskId: string, data: string): void {
    const result: ResultMessage = {
      v: 1,
      kind: "result",
      taskId,
      endpointId,
      uepId,
      state: "success",
      result: { strategy: JSON_DATA, data },
      completedAt: Date.now(),
    };
    channel.channel.publish(RESULTS_EXCHANGE, resultsRoutingKey(endpointId), Buffer.from(JSON.stringify(result)), {
      persistent: true,
      userId: "guest",
    });
  }

  async function resultsQueueDepth(): Promise<{ messages: number }> {
    const { messageCount } = await channel.channel.checkQueue(RESULTS_QUEUE);
    return { messages: messageCount };
  }

  /** Polls until `probe` is truthy (no timed assertion: the test's own timeout bounds it). */
  async function until<T>(probe: () => Promise<T | undefined>): Promise<T> {
    for (;;) {
      const value = await probe();
      if (value) return value;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it("holds the result unstored until the row exists, then stores and forwards it", async () => {
    const f = await fixture();
    const uepId = randomUUID();
    const taskId = randomUUID();
    const groupId = randomUUID();
    const resultQueue = taskGroupResultQueue(groupId);
    await broker.ensureQueues([resultQueue]);
    publishResult(f.endpointId, uepId, taskId, "42");
    // The consumer has it (the results queue is empty) but cannot store it: no row yet.
    await until(async () => (await resultsQueueDepth()).messages === 0);
    expect(await store.getTasks([taskId])).toEqual([]);
    expect((await channel.channel.checkQueue(resultQueue)).messageCount).toBe(0);

    // The submit's insert commits now, after the result arrived.
    const stored = await insertTask(f, uepId, groupId, taskId);
    expect(stored.ok).toBe(true);

    const forwarded = await until(async () => {
      const m = await channel.channel.get(resultQueue, { noAck: true });
      return m ? (JSON.parse(m.content.toString()) as { results: ResultMessage[] }) : undefined;
    });
    expect(forwarded.results).toMatchObject([{ taskId, state: "success", result: { data: "42" } }]);
    expect(await store.getTasks([taskId])).toMatchObject([{ state: "success", result: { data: "42" } }]);
    expect(lines.filter((l) => l.includes(taskId))).toEqual([]);
  });

  it("checks a held result's sender once the row exists: one the trust rules refuse is not stored", async () => {
    const f = await fixture();
    const uepId = randomUUID();
    const taskId = randomUUID();
    const groupId = randomUUID();
    // guest is now no shared account: only the task's UEP or endpoint account may report it.
    await broker.ensureQueues([taskGroupResultQueue(groupId)]);
    shared.delete("guest");
    try {
      publishResult(f.endpointId, uepId, taskId, "666");
      await until(async () => (await resultsQueueDepth()).messages === 0);
      await insertTask(f, uepId, groupId, taskId);
      const line = await until(async () => lines.find((l) => l.includes(taskId)));
      expect(line).toContain(`a result for task ${taskId}, which it may not report`);
      expect(await store.getTasks([taskId])).toMatchObject([{ state: "waiting-for-endpoint", result: null }]);
      expect((await channel.channel.checkQueue(taskGroupResultQueue(groupId))).messageCount).toBe(0);
    } finally {
      shared.add("guest");
    }
  });

  it("drops a result whose task never comes within the bound, with a log line, and acks it", async () => {
    const f = await fixture();
    const taskId = randomUUID();
    publishResult(f.endpointId, randomUUID(), taskId, "1");
    const line = await until(async () => lines.find((l) => l.includes(taskId)));
    expect(line).toBe(
      `Result for unknown task ${taskId} from endpoint ${f.endpointId} was dropped: no such task was stored within ${HOLD_MS} ms of its arrival.`,
    );
    // Acked: nothing left for a redelivery, and a later row does not bring it back.
    await channel.close();
    channel = await openChannel(vhost);
    expect((await resultsQueueDepth()).messages).toBe(0);
    expect(await store.getTasks([taskId])).toEqual([]);
  });
});
