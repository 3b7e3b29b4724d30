#!/usr/bin/env node
/**
 * The task hop alone, with and without batching (README, "Task hop
 * batching"): `BENCH_HOP_TASKS` (default 10,000) no-op task messages as the
 * service builds them, published persistent with publisher confirms to one
 * durable queue (all in flight at once, as one publishAll does) and consumed
 * on a second connection (prefetch 32, a UEP's constant prefetch before it followed its engine's capacity) that decodes
 * every task and acks each message once all of its tasks are counted. One
 * row per batch size: 1 (one message per task, as before) and the service's
 * bounds. Runs on a vhost of its own; medians of 3.
 *
 *   node bench/task-hop.mjs
 */
import { randomUUID } from "node:crypto";
import { loadavg } from "node:os";
import { connectBroker, decodeMessage, directQueueSpec, encodeMessage } from "@conduit/protocol";
import { createVhost } from "../scripts/local-stack.mjs";

const TASKS = Number(process.env.BENCH_HOP_TASKS ?? 10_000);
const SIZES = [1, 16, 128];

function task() {
  return {
    v: 1,
    kind: "task",
    taskId: randomUUID(),
    functionId: randomUUID(),
    endpointId: randomUUID(),
    uepId: randomUUID(),
    taskGroupId: randomUUID(),
    function: { strategy: "conduit.SourceCode", data: "() => null" },
    args: { strategy: "conduit.StructuredData", data: '{"args":[],"kwargs":{}}' },
  };
}

async function once(url, batch) {
  const queue = `hop-bench-${randomUUID()}`;
  const spec = directQueueSpec(queue);
  const producer = await connectBroker(url, { name: "hop-bench-producer" });
  const consumer = await connectBroker(url, { name: "hop-bench-consumer", prefetch: 32 });
  try {
    const ch = await consumer.ready();
    await ch.assertQueue(queue, spec.options);
    let seen = 0;
    let done;
    const all = new Promise((resolve) => {
      done = resolve;
    });
    await ch.consume(queue, (msg) => {
      if (!msg) return;
      const m = decodeMessage(msg.content, "task", "tasks");
      seen += m.kind === "tasks" ? m.tasks.length : 1;
      ch.ack(msg);
      if (seen === TASKS) done();
    });
    const tasks = Array.from({ length: TASKS }, task);
    const messages = [];
    for (let i = 0; i < tasks.length; i += batch) {
      const slice = tasks.slice(i, i + batch);
      messages.push(slice.length === 1 ? slice[0] : { v: 1, kind: "tasks", tasks: slice });
    }
    // Encoded as the broker link does, inside the measurement.
    const t0 = process.hrtime.bigint();
    await Promise.all(messages.map((m) => producer.publish("", queue, m)));
    await all;
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    await ch.deleteQueue(queue);
    return { rate: TASKS / s, messages: messages.length, bytes: encodeMessage(messages[0]).length };
  } finally {
    await producer.close();
    await consumer.close();
  }
}

const vhost = await createVhost();
try {
  console.log(`Task hop alone: ${TASKS} tasks in flight, persistent + confirms, load ${loadavg()[0].toFixed(1)}`);
  console.log("| tasks per message | messages | tasks/s (median of 3, min–max) |\n|---|---|---|");
  for (const batch of SIZES) {
    const runs = [];
    for (let i = 0; i < 3; i++) runs.push(await once(vhost.url, batch));
    const rates = runs.map((r) => r.rate).sort((a, b) => a - b);
    console.log(
      `| ${batch} | ${runs[0].messages} | ${rates[1].toFixed(0)} (${rates[0].toFixed(0)}–${rates[2].toFixed(0)}) |`,
    );
  }
  console.log(`load after ${loadavg()[0].toFixed(1)}`);
} finally {
  await vhost.dispose();
}
