/**
 * A result consumer alone, for the result path's tests: a PGlite store, a
 * vhost of its own, a {@link ServiceBroker} consuming results with the
 * options a suite gives, and a plain channel playing the endpoints (they
 * publish as guest). Every log line is kept in `lines`.
 */
import { randomUUID } from "node:crypto";
import { JSON_DATA, RESULTS_EXCHANGE, type ResultMessage, resultsRoutingKey } from "@conduit/protocol";
import type { FastifyBaseLogger } from "fastify";
import { afterAll, beforeAll } from "vitest";
import { sha256Hex } from "../../src/auth/tokens.js";
import { ResultConsumer, type ResultConsumerOptions } from "../../src/broker/result-consumer.js";
import { ServiceBroker } from "../../src/broker/service-broker.js";
import { openStore } from "../../src/store/open-store.js";
import type { Store } from "../../src/store/store.js";
import { createVhost, openChannel } from "./broker.js";
import { createTempDir, type Throwaway } from "./databases.js";

/** A success result of `taskId` from `uepId`, as an endpoint publishes it. */
export function successResult(
  endpointId: string,
  uepId: string,
  taskId: string,
  data: string,
  completedAt = Date.now(),
): ResultMessage {
  return {
    v: 1,
    kind: "result",
    taskId,
    endpointId,
    uepId,
    state: "success",
    result: { strategy: JSON_DATA, data },
    completedAt,
  };
}

export interface ResultConsumerSuite {
  readonly store: Store;
  readonly broker: ServiceBroker;
  readonly channel: Awaited<ReturnType<typeof openChannel>>;
  readonly vhost: string;
  /** Every line the service logged. */
  readonly lines: string[];
  /** An identity, its endpoint and a function, stored. */
  endpoint(): Promise<{ ownerId: string; endpointId: string; functionId: string }>;
  /** Stores tasks of `e`'s endpoint for `uepId` in group `taskGroupId`, as a submit commits them. */
  insertTasks(
    e: { ownerId: string; endpointId: string; functionId: string },
    uepId: string,
    taskGroupId: string,
    taskIds: readonly string[],
  ): ReturnType<Store["insertTasks"]>;
  /** Publishes a message on the results exchange as guest, under `endpointId`'s routing key. */
  publish(endpointId: string, body: unknown): void;
  /** Opens a new channel (the old one closed), e.g. to see what is left unacked. */
  reopenChannel(): Promise<void>;
}

/**
 * Registers beforeAll/afterAll that start the consumer with `options(store)`
 * (after `prepare(store)`, which may wrap the store's methods).
 */
export function useResultConsumer(
  options: (store: Store) => ResultConsumerOptions,
  prepare: (store: Store) => void = () => {},
): ResultConsumerSuite {
  const disposers: Array<Throwaway<unknown>> = [];
  const lines: string[] = [];
  let store: Store;
  let broker: ServiceBroker;
  let channel: Awaited<ReturnType<typeof openChannel>>;
  let vhost: string;

  beforeAll(async () => {
    const dir = await createTempDir();
    disposers.push(dir);
    store = await openStore({ kind: "pglite", dataDir: dir.value });
    prepare(store);
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
    await broker.addConsumer(new ResultConsumer(store, broker, logger, options(store)));
    channel = await openChannel(vhost);
  }, 300_000);

  afterAll(async () => {
    await channel?.close();
    await broker?.stopConsumers();
    await store?.close();
    for (const d of disposers.reverse()) await d.dispose();
  });

  return {
    get store() {
      return store;
    },
    get broker() {
      return broker;
    },
    get channel() {
      return channel;
    },
    get vhost() {
      return vhost;
    },
    lines,
    async endpoint() {
      const owner = await store.createIdentity(`owner-${randomUUID()}@example.org`);
      const endpoint = await store.registerEndpoint({
        id: randomUUID(),
        ownerId: owner.id,
        name: "ep",
        multiUser: false,
      });
      const fn = await store.registerFunction(owner.id, { strategy: "conduit.SourceCode", data: "() => 1" });
      return { ownerId: owner.id, endpointId: (endpoint as { id: string }).id, functionId: fn.id };
    },
    insertTasks(e, uepId, taskGroupId, taskIds) {
      return store.insertTasks({
        ownerId: e.ownerId,
        endpointId: e.endpointId,
        uepId,
        taskGroupId,
        taskGroupGiven: true,
        uepConfig: {},
        uepRuntime: null,
        published: true,
        tasks: taskIds.map((id) => ({
          id,
          functionId: e.functionId,
          argsBytes: 2,
          argsSha256: sha256Hex(JSON_DATA, "[]"),
        })),
      });
    },
    publish(endpointId, body) {
      channel.channel.publish(RESULTS_EXCHANGE, resultsRoutingKey(endpointId), Buffer.from(JSON.stringify(body)), {
        persistent: true,
        userId: "guest",
      });
    },
    async reopenChannel() {
      await channel.close();
      channel = await openChannel(vhost);
    },
  };
}
