/**
 * The result path's overlap (issue 23): the first result of a task this
 * replica stored is forwarded to its task group's queue while it is stored,
 * not after: its route and its sender's right to report it are known from
 * the submit. Proven with the store's result statement held open: the result
 * reaches the Executor's queue while the task is still unfinished in the
 * store, and is stored once the statement goes on. A sender the trust rules
 * refuse, a second result and a task without a route (a High-Assurance one)
 * take the stored path. A real
 * RabbitMQ vhost, a real PGlite store.
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
import { SubmittedRoutes } from "../src/tasks/submitted-routes.js";
import { createVhost, openChannel } from "./helpers/broker.js";
import { createTempDir, type Throwaway } from "./helpers/databases.js";

describe("a result forwarded while it is stored", () => {
  const disposers: Array<Throwaway<unknown>> = [];
  const lines: string[] = [];
  const routes = new SubmittedRoutes();
  /** Endpoints publish as guest here, a shared account (allowed to report any task) unless a test removes it. */
  const shared = new Set(["guest"]);
  let store: Store;
  let broker: ServiceBroker;
  let channel: Awaited<ReturnType<typeof openChannel>>;
  /** While set, the store's result statement waits for it. */
  let gate: Promise<void> | undefined;

  beforeAll(async () => {
    const dir = await createTempDir();
    disposers.push(dir);
    store = await openStore({ kind: "pglite", dataDir: dir.value });
    const storeResults = store.storeResults.bind(store);
    store.storeResults = async (...args) => {
      await gate;
      return storeResults(...args);
    };
    const host = await createVhost();
    disposers.push(host);
    const note = (...args: unknown[]) => lines.push(String(args.find((a) => typeof a === "string") ?? ""));
    const logger = { warn: note, info: note, error: note, debug: note } as unknown as FastifyBaseLogger;
    broker = await ServiceBroker.connect({
      url: host.value,
      logger,
      prefetch: 100,
      initialMaxRetries: 3,
      resultRetentionMs: 600_000,
    });
    await broker.addConsumer(new ResultConsumer(store, broker, logger, { routes, sharedAccounts: shared }));
    channel = await openChannel(host.value);
  }, 300_000);

  afterAll(async () => {
    await channel?.close();
    await broker?.stopConsumers();
    await store?.close();
    for (const d of disposers.reverse()) await d.dispose();
  });

  /** A stored task of a new endpoint, its route recorded as the submit records it. */
  async function storedTask() {
    const owner = await store.createIdentity(`owner-${randomUUID()}@example.org`);
    const endpoint = await store.registerEndpoint({
      id: randomUUID(),
      ownerId: owner.id,
      name: "ep",
      multiUser: false,
    });
    const fn = await store.registerFunction(owner.id, { strategy: "conduit.SourceCode", data: "() => 1" });
    const endpointId = endpoint!.id;
    const uepId = randomUUID();
    const taskGroupId = randomUUID();
    const taskIds = [randomUUID(), randomUUID()];
    const stored = await store.insertTasks({
      ownerId: owner.id,
      endpointId,
      uepId,
      taskGroupId,
      taskGroupGiven: true,
      uepConfig: {},
      uepRuntime: null,
      published: true,
      tasks: taskIds.map((id) => ({ id, functionId: fn.id, argsBytes: 2, argsSha256: sha256Hex(JSON_DATA, "[]") })),
    });
    expect(stored.ok).toBe(true);
    await broker.ensureQueues([taskGroupResultQueue(taskGroupId)]);
    routes.add(taskIds, { endpointId, uepId, taskGroupId });
    return { endpointId, uepId, taskGroupId, taskIds };
  }

  function result(endpointId: string, uepId: string, taskId: string, data: string): ResultMessage {
    return {
      v: 1,
      kind: "result",
      taskId,
      endpointId,
      uepId,
      state: "success",
      result: { strategy: JSON_DATA, data },
      completedAt: Date.now(),
    };
  }

  /** Publishes `body` on the results exchange as guest. */
  function publish(endpointId: string, body: unknown): void {
    channel.channel.publish(RESULTS_EXCHANGE, resultsRoutingKey(endpointId), Buffer.from(JSON.stringify(body)), {
      persistent: true,
      userId: "guest",
    });
  }

  /** The next message on a task group's queue (polled; the test's timeout bounds it). */
  async function nextForwarded(taskGroupId: string): Promise<ResultMessage[]> {
    for (;;) {
      const m = await channel.channel.get(taskGroupResultQueue(taskGroupId), { noAck: true });
      if (m) return (JSON.parse(m.content.toString()) as { results: ResultMessage[] }).results;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async function until(probe: () => Promise<boolean>): Promise<void> {
    while (!(await probe())) await new Promise((r) => setTimeout(r, 20));
  }

  it("reaches the task group's queue before it is stored, and is stored once the statement goes on", async () => {
    const t = await storedTask();
    let release = () => {};
    gate = new Promise((r) => (release = r));
    try {
      publish(t.endpointId, result(t.endpointId, t.uepId, t.taskIds[0]!, "42"));
      const forwarded = await nextForwarded(t.taskGroupId);
      expect(forwarded).toMatchObject([{ taskId: t.taskIds[0], state: "success", result: { data: "42" } }]);
      // Forwarded, not yet stored: the statement is still waiting.
      expect(await store.getTasks([t.taskIds[0]!])).toMatchObject([{ state: "waiting-for-endpoint", result: null }]);
    } finally {
      release();
      gate = undefined;
    }
    await until(async () => (await store.getTasks([t.taskIds[0]!]))[0]?.state === "success");

    // A second result of the same task, with the first result of the other one in the same message:
    // the second takes the stored path (the task is finished: not forwarded), the other goes early.
    publish(t.endpointId, {
      v: 1,
      kind: "results",
      results: [result(t.endpointId, t.uepId, t.taskIds[0]!, "43"), result(t.endpointId, t.uepId, t.taskIds[1]!, "44")],
    });
    expect(await nextForwarded(t.taskGroupId)).toMatchObject([{ taskId: t.taskIds[1], result: { data: "44" } }]);
    await until(async () => (await store.getTasks([t.taskIds[1]!]))[0]?.state === "success");
    expect((await channel.channel.checkQueue(taskGroupResultQueue(t.taskGroupId))).messageCount).toBe(0);
    expect(await store.getTasks([t.taskIds[0]!])).toMatchObject([{ state: "success", result: { data: "42" } }]);
  });

  it("does not forward a result from an account that may not report the task: the store refuses it", async () => {
    const t = await storedTask();
    // guest is now no shared account: neither the task's UEP nor its endpoint account.
    shared.delete("guest");
    try {
      publish(t.endpointId, result(t.endpointId, t.uepId, t.taskIds[0]!, "666"));
      await until(async () => lines.some((l) => l.includes(t.taskIds[0]!)));
    } finally {
      shared.add("guest");
    }
    expect(lines.find((l) => l.includes(t.taskIds[0]!))).toContain(
      `a result for task ${t.taskIds[0]}, which it may not report`,
    );
    expect(await store.getTasks([t.taskIds[0]!])).toMatchObject([{ state: "waiting-for-endpoint", result: null }]);
    expect((await channel.channel.checkQueue(taskGroupResultQueue(t.taskGroupId))).messageCount).toBe(0);
    // Its route stays for the task's own account.
    expect(routes.take(t.taskIds[0]!, t.endpointId, `conduit-uep-${t.uepId}`, false)).toMatchObject({
      taskGroupId: t.taskGroupId,
    });
  });

  it("gives a High-Assurance task no route: its notice is forwarded only once its result is stored", async () => {
    const t = await storedTask();
    routes.forget(t.taskIds[0]!); // as the submit does for an HA endpoint's tasks
    let release = () => {};
    gate = new Promise((r) => (release = r));
    try {
      publish(t.endpointId, result(t.endpointId, t.uepId, t.taskIds[0]!, "7"));
      await until(async () => (await channel.channel.checkQueue(RESULTS_QUEUE)).messageCount === 0);
      // Taken, held by the statement: nothing forwarded yet.
      expect((await channel.channel.checkQueue(taskGroupResultQueue(t.taskGroupId))).messageCount).toBe(0);
    } finally {
      release();
      gate = undefined;
    }
    expect(await nextForwarded(t.taskGroupId)).toMatchObject([{ taskId: t.taskIds[0], result: { data: "7" } }]);
    expect(await store.getTasks([t.taskIds[0]!])).toMatchObject([{ state: "success" }]);
  });
});
