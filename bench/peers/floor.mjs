/**
 * The per-message floor on this broker: client → request queue → consumer →
 * reply queue → client, in Node, noDelay on both sockets, prefetch 200.
 * Transient: non-durable queues, transient messages, no confirms. Durable:
 * durable queues, persistent messages, publisher confirms, the consumer acking
 * after its reply is confirmed. Nothing that sends one message per task over
 * this broker can beat it; batching many tasks per message can, on (b).
 */
import { randomUUID } from "node:crypto";
import amqp from "amqplib";
import { msSince, percentile } from "../stats.mjs";

export const name = "RabbitMQ floor";
export const versionsNote = "two-hop echo in Node (amqplib), noDelay, prefetch 200";

export async function prepare(ctx) {
  const vhost = await ctx.vhost();
  return {
    configs: [
      { id: "transient", label: "transient", figures: ["a", "b"], run: (sizes) => echo(vhost.url, false, sizes) },
      { id: "durable", label: "durable", figures: ["a", "b"], run: (sizes) => echo(vhost.url, true, sizes) },
    ],
  };
}

/** The echo over `url`: (a) from `sizes.roundTrips` calls one at a time, (b) from `sizes.burst` at once. */
export async function echo(url, durable, sizes) {
  const id = randomUUID();
  const requests = `bench.${id}.requests`;
  const replies = `bench.${id}.replies`;
  const server = await amqp.connect(url, { noDelay: true });
  const client = await amqp.connect(url, { noDelay: true });
  const sch = durable ? await server.createConfirmChannel() : await server.createChannel();
  const cch = durable ? await client.createConfirmChannel() : await client.createChannel();
  await sch.prefetch(200);
  await cch.prefetch(200);
  await cch.assertQueue(requests, { durable });
  await cch.assertQueue(replies, { durable });
  await sch.consume(requests, (msg) => {
    if (!msg) return; // cancelled when the queue is deleted at the end
    const props = { persistent: durable, correlationId: msg.properties.correlationId };
    if (durable) sch.sendToQueue(replies, msg.content, props, () => sch.ack(msg));
    else {
      sch.sendToQueue(replies, msg.content, props);
      sch.ack(msg);
    }
  });
  const waiting = new Map();
  await cch.consume(replies, (msg) => {
    if (!msg) return;
    cch.ack(msg);
    const resolve = waiting.get(msg.properties.correlationId);
    waiting.delete(msg.properties.correlationId);
    resolve?.();
  });
  let n = 0;
  const call = () =>
    new Promise((resolve, reject) => {
      const correlationId = String(n++);
      waiting.set(correlationId, resolve);
      const props = { persistent: durable, correlationId };
      if (durable) cch.sendToQueue(requests, Buffer.from("{}"), props, (err) => err && reject(err));
      else cch.sendToQueue(requests, Buffer.from("{}"), props);
    });
  try {
    await call(); // warms the consumer
    for (let i = 0; i < sizes.warmup; i++) await call();
    const samples = [];
    for (let i = 0; i < sizes.roundTrips; i++) {
      const t0 = process.hrtime.bigint();
      await call();
      samples.push(msSince(t0));
    }
    samples.sort((a, b) => a - b);
    const t0 = process.hrtime.bigint();
    await Promise.all(Array.from({ length: sizes.burst }, call));
    return { a_p50: percentile(samples, 50), a_p99: percentile(samples, 99), b: sizes.burst / (msSince(t0) / 1000) };
  } finally {
    await cch.deleteQueue(requests);
    await cch.deleteQueue(replies);
    await client.close();
    await server.close();
  }
}
