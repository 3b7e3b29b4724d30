/**
 * The result listener against a real RabbitMQ vhost: a missing group queue is
 * a one-sentence error that leaves the link working for the other queues, the
 * count of waiting messages reaches the caller even on a link's first connect,
 * and only messages the service's broker user published count.
 */
import { randomUUID } from "node:crypto";
import { type AmqpInfo, encodeMessage, QUEUE_OPTIONS, type ResultMessage } from "@conduit/protocol";
import amqp from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBrokerUser, createVhost } from "../../../scripts/local-stack.mjs";
import { ResultListener } from "../src/result-listener.js";

let vhost: { url: string; dispose(): Promise<void> };
/** The service publishes as guest in these tests (`user-id` must be the connection's user). */
const AS_SERVICE = { persistent: true, userId: "guest" };
beforeAll(async () => {
  vhost = await createVhost();
});
afterAll(async () => {
  await vhost?.dispose();
});

function amqpInfo(): AmqpInfo {
  return { url: vhost.url, serviceUser: "guest" };
}

/** Task ids are UUIDs on the wire; these tests name their tasks, one UUID per name. */
const taskIds = new Map<string, string>();
function taskIdOf(name: string): string {
  if (!taskIds.has(name)) taskIds.set(name, randomUUID());
  return taskIds.get(name) as string;
}
function nameOf(taskId: string): string {
  return [...taskIds].find(([, id]) => id === taskId)?.[0] ?? taskId;
}

function result(name: string): ResultMessage {
  return {
    v: 1,
    kind: "result",
    taskId: taskIdOf(name),
    endpointId: "00000000-0000-4000-8000-000000000000",
    uepId: "00000000-0000-4000-8000-000000000001",
    state: "success",
    result: { strategy: "conduit.JSONData", data: "1" },
    completedAt: Date.now(),
  };
}

describe("ResultListener", () => {
  it("refuses a missing queue in one sentence and keeps consuming the others", async () => {
    const connection = await amqp.connect(vhost.url);
    const channel = await connection.createConfirmChannel();
    const queue = "tg.waiting.results";
    await channel.assertQueue(queue, QUEUE_OPTIONS);
    for (const id of ["a", "b"]) channel.sendToQueue(queue, encodeMessage(result(id)), AS_SERVICE);
    await channel.waitForConfirms();

    const received: string[] = [];
    const listener = new ResultListener((results) => received.push(...results.map((r) => nameOf(r.taskId))));
    try {
      await expect(listener.listen(amqpInfo(), "tg.gone.results")).rejects.toThrow(
        /^The result queue tg\.gone\.results does not exist .*; fetch results with client\.getResult\(taskId\), or submit to a new task group\.$/,
      );
      // The link's channel survived the 404: the waiting messages are counted and arrive.
      expect(await listener.listen(amqpInfo(), queue)).toBe(2);
      await expect.poll(() => received.sort()).toEqual(["a", "b"]);
      channel.sendToQueue(queue, encodeMessage(result("c")), AS_SERVICE);
      await expect.poll(() => received.includes("c")).toBe(true);
    } finally {
      await listener.close();
      await connection.close();
    }
  });

  it("counts the waiting messages when the queue is the first one of a new link", async () => {
    const connection = await amqp.connect(vhost.url);
    const channel = await connection.createConfirmChannel();
    const queue = "tg.first.results";
    await channel.assertQueue(queue, QUEUE_OPTIONS);
    for (const id of ["x", "y", "z"]) channel.sendToQueue(queue, encodeMessage(result(id)), AS_SERVICE);
    await channel.waitForConfirms();
    const listener = new ResultListener(() => undefined);
    try {
      expect(await listener.listen(amqpInfo(), queue)).toBe(3);
    } finally {
      await listener.close();
      await connection.close();
    }
  });

  it("takes results only from the service's broker user: none without user-id or from another account", async () => {
    const intruder = await createBrokerUser(vhost.url);
    const service = await amqp.connect(vhost.url);
    const other = await amqp.connect(intruder.url);
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on("warning", onWarning);
    const received: string[] = [];
    const listener = new ResultListener((results) => received.push(...results.map((r) => nameOf(r.taskId))));
    try {
      const queue = "tg.forged.results";
      const channel = await service.createConfirmChannel();
      await channel.assertQueue(queue, QUEUE_OPTIONS);
      expect(await listener.listen(amqpInfo(), queue)).toBe(0);
      // No user-id at all, then a user-id that RabbitMQ checked: the intruder's own.
      channel.sendToQueue(queue, encodeMessage(result("no-user-id")), { persistent: true });
      await channel.waitForConfirms();
      const forged = await other.createConfirmChannel();
      for (const id of ["forged-1", "forged-2"]) {
        forged.sendToQueue(queue, encodeMessage(result(id)), { persistent: true, userId: intruder.name });
      }
      await forged.waitForConfirms();
      channel.sendToQueue(queue, encodeMessage(result("real")), AS_SERVICE);
      await channel.waitForConfirms();

      await expect.poll(() => received).toEqual(["real"]);
      // Acked and dropped: nothing waits in the queue for a redelivery.
      await expect.poll(async () => (await channel.checkQueue(queue)).messageCount).toBe(0);
      // One line per account, naming it (the second forgery within the minute is only counted).
      expect(warnings.filter((w) => w.includes(intruder.name))).toEqual([
        `Refused a message in ${queue}: only the service (guest) may send results, sent by broker account ${intruder.name}; it was dropped.`,
      ]);
      expect(warnings.filter((w) => w.includes("(no user-id)"))).toHaveLength(1);
    } finally {
      process.off("warning", onWarning);
      await listener.close();
      await other.close();
      await service.close();
      await intruder.dispose();
    }
  });
});
