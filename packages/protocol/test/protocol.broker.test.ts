import { randomUUID } from "node:crypto";
import { type BrokerLink, connectBroker, DEFAULT_AMQP_URL, decodeMessage, redactUrl } from "@conduit/protocol";
import { afterAll, describe, expect, it } from "vitest";

const links: BrokerLink[] = [];
afterAll(async () => {
  await Promise.all(links.map((l) => l.close()));
});

describe("broker link", () => {
  it("publishes with confirms, stamped with its user as user-id, and consumes on the real RabbitMQ", async () => {
    const queue = `test.${randomUUID()}`;
    const received: string[] = [];
    const senders: unknown[] = [];
    const link = await connectBroker(DEFAULT_AMQP_URL, {
      name: "protocol-test",
      setup: async (ch) => {
        await ch.assertQueue(queue, { durable: false, autoDelete: true });
        await ch.consume(queue, (msg) => {
          if (!msg) return;
          received.push(decodeMessage(msg.content, "heartbeat").endpointId);
          senders.push(msg.properties.userId);
          ch.ack(msg);
        });
      },
    });
    links.push(link);
    const endpointId = randomUUID();
    await link.publish("", queue, { v: 1, kind: "heartbeat", role: "mep", endpointId, period: 1, sentAt: 0 });
    await expect.poll(() => received, { timeout: 5000 }).toEqual([endpointId]);
    // The URL's user (guest): RabbitMQ refuses any other user-id on this connection.
    expect(link.user).toBe("guest");
    expect(senders).toEqual(["guest"]);
  });

  it("says how to fix an unreachable broker, without the password", async () => {
    await expect(connectBroker("amqp://guest:secret@127.0.0.1:1", { name: "x", maxRetries: 0 })).rejects.toThrow(
      /Cannot connect to RabbitMQ at amqp:\/\/guest:\*\*\*@127.0.0.1:1 .*rabbitmq-server -detached/,
    );
    expect(redactUrl("amqp://u:p@h:1/v")).toBe("amqp://u:***@h:1/v");
  });
});
