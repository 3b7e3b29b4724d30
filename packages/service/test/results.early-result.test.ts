/**
 * Race 1 of the overlapped submit (issue 23): the submit publishes its tasks
 * while it stores them, so a result can reach the service before its task's
 * row exists. The result consumer holds it, unacked, until the row exists,
 * then stores it under the trust rules (the sender must be allowed to report
 * that task) and forwards it; it drops one whose row never comes within its
 * bound, with a log line. A real RabbitMQ vhost, a real PGlite store.
 */
import { randomUUID } from "node:crypto";
import { RESULTS_QUEUE, type ResultMessage, taskGroupResultQueue } from "@conduit/protocol";
import { describe, expect, it } from "vitest";
import { successResult, useResultConsumer } from "./helpers/result-consumer.js";

const HOLD_MS = 1500;

describe("a result that arrives before its task's row", () => {
  // Endpoints publish as guest here: the shared account, allowed to report any task.
  const shared = new Set(["guest"]);
  const suite = useResultConsumer(() => ({ unknownTaskHoldMs: HOLD_MS, sharedAccounts: shared }));
  const { lines } = suite;

  function publishResult(endpointId: string, uepId: string, taskId: string, data: string): void {
    suite.publish(endpointId, successResult(endpointId, uepId, taskId, data));
  }

  async function resultsQueueDepth(): Promise<{ messages: number }> {
    const { messageCount } = await suite.channel.channel.checkQueue(RESULTS_QUEUE);
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
    const { store, broker, channel } = suite;
    const f = await suite.endpoint();
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
    const stored = await suite.insertTasks(f, uepId, groupId, [taskId]);
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
    const { store, broker, channel } = suite;
    const f = await suite.endpoint();
    const uepId = randomUUID();
    const taskId = randomUUID();
    const groupId = randomUUID();
    // guest is now no shared account: only the task's UEP or endpoint account may report it.
    await broker.ensureQueues([taskGroupResultQueue(groupId)]);
    shared.delete("guest");
    try {
      publishResult(f.endpointId, uepId, taskId, "666");
      await until(async () => (await resultsQueueDepth()).messages === 0);
      await suite.insertTasks(f, uepId, groupId, [taskId]);
      const line = await until(async () => lines.find((l) => l.includes(taskId)));
      expect(line).toContain(`a result for task ${taskId}, which it may not report`);
      expect(await store.getTasks([taskId])).toMatchObject([{ state: "waiting-for-endpoint", result: null }]);
      expect((await channel.channel.checkQueue(taskGroupResultQueue(groupId))).messageCount).toBe(0);
    } finally {
      shared.add("guest");
    }
  });

  it("drops a result whose task never comes within the bound, with a log line, and acks it", async () => {
    const f = await suite.endpoint();
    const taskId = randomUUID();
    publishResult(f.endpointId, randomUUID(), taskId, "1");
    const line = await until(async () => lines.find((l) => l.includes(taskId)));
    expect(line).toBe(
      `Result for unknown task ${taskId} from endpoint ${f.endpointId} was dropped: no such task was stored within ${HOLD_MS} ms of its arrival.`,
    );
    // Acked: nothing left for a redelivery, and a later row does not bring it back.
    await suite.reopenChannel();
    expect((await resultsQueueDepth()).messages).toBe(0);
    expect(await suite.store.getTasks([taskId])).toEqual([]);
  });
});
