/**
 * The topology table against a real RabbitMQ vhost: what the service declares
 * from it routes every message where the table says, an account without the
 * configure permission (a scoped MEP or UEP) can check the exchanges but not
 * declare them, and a check never creates what is missing.
 */
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { promisify } from "node:util";
import {
  checkExchanges,
  commandQueueSpec,
  declareExchanges,
  declareQueue,
  declareTopology,
  directQueueSpec,
  ensureQueue,
  HEARTBEATS_EXCHANGE,
  queueOptions,
  RESULTS_EXCHANGE,
  TASKS_EXCHANGE,
  TOPOLOGY,
  taskGroupQueueSpec,
} from "@conduit/protocol";
import amqp, { type ChannelModel } from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBrokerUser, createVhost } from "../../../scripts/local-stack.mjs";

const execFileAsync = promisify(execFile);

let vhost: { url: string; dispose(): Promise<void> };
const connections: ChannelModel[] = [];
beforeAll(async () => {
  vhost = await createVhost();
});
afterAll(async () => {
  await Promise.all(connections.map((c) => c.close().catch(() => undefined)));
  await vhost?.dispose();
});

async function channel(url = vhost.url) {
  const connection = await amqp.connect(url);
  connections.push(connection);
  connection.on("error", () => undefined);
  const ch = await connection.createConfirmChannel();
  ch.on("error", () => undefined);
  return ch;
}

describe("the topology table", () => {
  it("declared by the service, routes results, heartbeats and direct queues as it says", async () => {
    const ch = await channel();
    await declareTopology(ch);
    const endpointId = randomUUID();
    const own = [commandQueueSpec(endpointId), taskGroupQueueSpec(randomUUID(), 60_000)];
    for (const queue of own) await declareQueue(ch, queue);
    // One message under each binding (a key the pattern matches), then each queue holds exactly one.
    for (const queue of [...TOPOLOGY.queues, ...own]) {
      for (const { exchange, pattern } of queue.bindings) {
        const key = pattern === "#" ? `${endpointId}.any` : pattern;
        ch.publish(exchange, key, Buffer.from("{}"), { persistent: true });
      }
    }
    await ch.waitForConfirms();
    for (const queue of [...TOPOLOGY.queues, ...own]) {
      await expect.poll(async () => (await ch.checkQueue(queue.name)).messageCount).toBe(1);
      await ch.purgeQueue(queue.name);
    }
    expect(TOPOLOGY.exchanges.map((e) => e.name)).toEqual([TASKS_EXCHANGE, RESULTS_EXCHANGE, HEARTBEATS_EXCHANGE]);
    // Declaring again with the table's arguments is a no-op, not a 406.
    await declareTopology(await channel());
  });

  it("is checked, not declared, by an account without the configure permission", async () => {
    await declareTopology(await channel());
    const scoped = await createBrokerUser(vhost.url);
    try {
      const vhostName = decodeURIComponent(new URL(vhost.url).pathname.slice(1));
      await execFileAsync("rabbitmqctl", ["-q", "set_permissions", "-p", vhostName, scoped.name, "^$", ".*", ".*"]);
      await checkExchanges(await channel(scoped.url));
      await checkExchanges(await channel(scoped.url), [RESULTS_EXCHANGE, HEARTBEATS_EXCHANGE]);
      await expect(declareExchanges(await channel(scoped.url))).rejects.toThrow(/ACCESS_REFUSED/);
    } finally {
      await scoped.dispose();
    }
  });

  it("a check never creates a missing exchange, and names only the table's exchanges", async () => {
    const empty = await createVhost();
    try {
      await expect(checkExchanges(await channel(empty.url))).rejects.toThrow(/NOT_FOUND/);
      // Still missing: the first check created nothing.
      await expect(checkExchanges(await channel(empty.url))).rejects.toThrow(/NOT_FOUND/);
    } finally {
      await empty.dispose();
    }
    await expect(checkExchanges(await channel(), ["amq.topic"])).rejects.toThrow("amq.topic is not a Conduit exchange");
  });

  it("declares quorum queues on request; a queue of the other type is refused in one sentence naming --amqp-queue-type", async () => {
    const quorum = await createVhost();
    try {
      await declareTopology(await channel(quorum.url), "quorum");
      // Again with the same type: a no-op.
      await declareTopology(await channel(quorum.url), "quorum");
      await expect(declareTopology(await channel(quorum.url))).rejects.toThrow(
        "The broker's queue conduit.results is a quorum queue, but this service declares classic queues (--amqp-queue-type classic); start the service with the --amqp-queue-type the queues were made with, or delete them (they hold undelivered messages) to make them anew.",
      );
    } finally {
      await quorum.dispose();
    }
    // The shared vhost's queues are classic (declared above without a type).
    await expect(declareTopology(await channel(), "quorum")).rejects.toThrow(
      /^The broker's queue conduit\.results is a classic queue, but this service declares quorum queues \(--amqp-queue-type quorum\);/,
    );
  });

  it("ensureQueue checks an existing queue of either type and declares only a missing one", async () => {
    const ch = await channel();
    const name = `ep.${randomUUID()}.commands`;
    await declareQueue(ch, directQueueSpec(name, queueOptions("quorum")));
    const checker = {
      async checkQueue(queue: string) {
        const own = await (await channel()).checkQueue(queue).catch(() => undefined);
        return own && { messageCount: own.messageCount, consumerCount: own.consumerCount };
      },
    };
    // Classic arguments against a quorum queue: no 406, the queue is only checked.
    expect(await ensureQueue(ch, checker, directQueueSpec(name), true)).toBe(0);
    const missing = `ep.${randomUUID()}.commands`;
    expect(await ensureQueue(ch, checker, directQueueSpec(missing))).toBe(0);
    expect((await ch.checkQueue(missing)).messageCount).toBe(0);
    await ch.deleteQueue(name);
    await ch.deleteQueue(missing);
  });
});
