/**
 * The per-message floor on this broker: client → request queue → consumer →
 * reply queue → client, in Node, durable queues, persistent messages,
 * publisher confirms, the consumer acking after its reply is confirmed,
 * prefetch 200, noDelay on both sockets.
 */
import { randomUUID } from "node:crypto";
import amqp from "amqplib";
import { percentile } from "./stats.mjs";

const URL = process.env.CONDUIT_BENCH_AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";

export async function echoFloor({ roundTrips, warmup, burst }) {
  const id = randomUUID();
  const requests = `bench.${id}.requests`;
  const replies = `bench.${id}.replies`;
  const server = await amqp.connect(URL, { noDelay: true });
  const client = await amqp.connect(URL, { noDelay: true });
  const sch = await server.createConfirmChannel();
  const cch = await client.createConfirmChannel();
  await sch.prefetch(200);
  await cch.prefetch(200);
  await cch.assertQueue(requests, { durable: true });
  await cch.assertQueue(replies, { durable: true });
  await sch.consume(requests, (msg) => {
    if (!msg) return; // cancelled when the queue is deleted at the end
    sch.sendToQueue(replies, msg.content, { persistent: true, correlationId: msg.properties.correlationId }, () =>
      sch.ack(msg),
    );
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
      cch.sendToQueue(requests, Buffer.from("{}"), { persistent: true, correlationId }, (err) => err && reject(err));
    });
  try {
    for (let i = 0; i < warmup; i++) await call();
    const samples = [];
    for (let i = 0; i < roundTrips; i++) {
      const t0 = process.hrtime.bigint();
      await call();
      samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    samples.sort((a, b) => a - b);
    const t0 = process.hrtime.bigint();
    await Promise.all(Array.from({ length: burst }, call));
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    return { p50: percentile(samples, 50), p99: percentile(samples, 99), throughput: burst / seconds };
  } finally {
    await cch.deleteQueue(requests);
    await cch.deleteQueue(replies);
    await client.close();
    await server.close();
  }
}
