/**
 * The result listener against a real RabbitMQ vhost: a missing group queue is
 * a one-sentence error that leaves the link working for the other queues, and
 * the count of waiting messages reaches the caller even on a link's first connect.
 */
import { encodeMessage, QUEUE_OPTIONS, type ResultMessage } from "@conduit/protocol";
import amqp from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVhost } from "../../../scripts/local-stack.mjs";
import { ResultListener } from "../src/result-listener.js";

let vhost: { url: string; dispose(): Promise<void> };
beforeAll(async () => {
  vhost = await createVhost();
});
afterAll(async () => {
  await vhost?.dispose();
});

function result(taskId: string): ResultMessage {
  return {
    v: 1,
    kind: "result",
    taskId,
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
    for (const id of ["a", "b"]) channel.sendToQueue(queue, encodeMessage(result(id)), { persistent: true });
    await channel.waitForConfirms();

    const received: string[] = [];
    const listener = new ResultListener((results) => received.push(...results.map((r) => r.taskId)));
    try {
      await expect(listener.listen(vhost.url, "tg.gone.results")).rejects.toThrow(
        /^The result queue tg\.gone\.results does not exist .*; fetch results with client\.getResult\(taskId\), or submit to a new task group\.$/,
      );
      // The link's channel survived the 404: the waiting messages are counted and arrive.
      expect(await listener.listen(vhost.url, queue)).toBe(2);
      await expect.poll(() => received.sort()).toEqual(["a", "b"]);
      channel.sendToQueue(queue, encodeMessage(result("c")), { persistent: true });
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
    for (const id of ["x", "y", "z"]) channel.sendToQueue(queue, encodeMessage(result(id)), { persistent: true });
    await channel.waitForConfirms();
    const listener = new ResultListener(() => undefined);
    try {
      expect(await listener.listen(vhost.url, queue)).toBe(3);
    } finally {
      await listener.close();
      await connection.close();
    }
  });
});
