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
  HEARTBEATS_EXCHANGE,
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
});
