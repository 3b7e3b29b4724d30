/**
 * The result consumer's batches are bounded by bytes as well as by count: big
 * results that arrive together are stored a few at a time (one statement each
 * here), so one is stored while the one before it is forwarded, and every
 * result is still stored, forwarded and acked exactly once. A fake store and
 * broker, so the test sees each statement's batch.
 */
import { randomUUID } from "node:crypto";
import {
  type ConfirmChannel,
  type ConsumeMessage,
  encodeMessage,
  type ResultMessage,
  resultsRoutingKey,
} from "@conduit/protocol";
import type { FastifyBaseLogger } from "fastify";
import { describe, expect, it } from "vitest";
import { ResultConsumer } from "../src/broker/result-consumer.js";
import type { Outgoing, ServiceBroker } from "../src/broker/service-broker.js";
import type { Store } from "../src/store/store.js";
import type { StoredResult, TaskResultInput } from "../src/store/store-types.js";

const MiB = 1024 * 1024;

describe("the result consumer's batches", () => {
  it("store big results a few at a time and small ones together, each stored, forwarded and acked once", async () => {
    const endpointId = randomUUID();
    const uepId = randomUUID();
    const taskGroupId = randomUUID();
    const statements: TaskResultInput[][] = [];
    const store = {
      async storeResults(results: readonly TaskResultInput[]): Promise<StoredResult[]> {
        statements.push([...results]);
        return results.map((r) => ({
          taskId: r.taskId,
          taskGroupId,
          sender: r.sender,
          refused: false,
          updated: true,
          state: r.state,
          highAssurance: false,
        }));
      },
    } as unknown as Store;
    const published: ResultMessage[] = [];
    let deliver: (raw: ConsumeMessage) => void = () => undefined;
    const acked: ConsumeMessage[] = [];
    const channel = {
      async consume(_queue: string, onMessage: (raw: ConsumeMessage) => void) {
        deliver = onMessage;
        return { consumerTag: "t" };
      },
      ack(raw: ConsumeMessage) {
        acked.push(raw);
      },
      async cancel() {},
    } as unknown as ConfirmChannel;
    const broker = {
      channel,
      async ensureQueues() {},
      async publishAll(messages: readonly Outgoing[]) {
        for (const m of messages) if (m.message.kind === "results") published.push(...m.message.results);
      },
    } as unknown as ServiceBroker;
    const quiet = () => undefined;
    const logger = { warn: quiet, info: quiet, error: quiet, debug: quiet } as unknown as FastifyBaseLogger;
    const consumer = new ResultConsumer(store, broker, logger, { sharedAccounts: new Set(["guest"]) });
    await consumer.attach(channel);

    const result = (data: string): ResultMessage => ({
      v: 1,
      kind: "result",
      taskId: randomUUID(),
      endpointId,
      uepId,
      state: "success",
      result: { strategy: "conduit.StructuredData", data },
      completedAt: Date.now(),
    });
    const raw = (message: ResultMessage) =>
      ({
        content: encodeMessage(message),
        fields: { routingKey: resultsRoutingKey(endpointId), redelivered: false, deliveryTag: 1 },
        properties: { userId: "guest" },
      }) as unknown as ConsumeMessage;
    // Six 3 MiB results and six small ones, all in the same tick.
    const big = Array.from({ length: 6 }, () => result("A".repeat(3 * MiB)));
    const small = Array.from({ length: 6 }, () => result("tiny"));
    const deliveries = [...big, ...small].map(raw);
    for (const d of deliveries) deliver(d);
    await consumer.stop();

    // No statement holds two big results; the small ones share one.
    for (const statement of statements) {
      expect(statement.filter((r) => (r.result?.data.length ?? 0) > MiB).length).toBeLessThanOrEqual(1);
    }
    expect(statements.some((s) => s.filter((r) => r.result?.data === "tiny").length > 1)).toBe(true);
    // Every result stored, forwarded and acked exactly once, intact.
    const ids = [...big, ...small].map((r) => r.taskId).sort();
    expect(
      statements
        .flat()
        .map((r) => r.taskId)
        .sort(),
    ).toEqual(ids);
    expect(published.map((r) => r.taskId).sort()).toEqual(ids);
    expect(published.every((r) => r.result?.data === "tiny" || r.result?.data === "A".repeat(3 * MiB))).toBe(true);
    expect(new Set(acked).size).toBe(deliveries.length);
    expect(acked.length).toBe(deliveries.length);
  });
});
