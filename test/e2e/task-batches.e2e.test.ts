/**
 * The task hop's batches end to end (SDK → service → RabbitMQ → UEP → back):
 * 1,000 tasks submitted at once each come back exactly once with their own
 * value, and the UEP's queue carried them in far fewer messages than tasks
 * (the service sends each submit request's tasks as `tasks` messages of up to
 * 128), every one of them acked.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type E2eStack, withStack } from "./helpers.js";

const TASKS = 1_000;

let stack: E2eStack;
beforeAll(async () => {
  stack = await withStack({ endpointName: "batches" });
});
afterAll(async () => {
  await stack?.dispose();
});

interface QueueStats {
  name: string;
  message_stats?: { publish?: number; ack?: number };
}

/** The management API's figures for this endpoint's UEP task queue (they lag the broker by a few seconds). */
async function uepQueueStats(): Promise<QueueStats | undefined> {
  const response = await fetch("http://127.0.0.1:15672/api/queues?columns=name,message_stats", {
    headers: { authorization: `Basic ${Buffer.from("guest:guest").toString("base64")}` },
  });
  expect(response.ok).toBe(true);
  const queues = (await response.json()) as QueueStats[];
  return queues.find((q) => q.name.startsWith(`uep.${stack.endpointId}.`) && q.name.endsWith(".tasks"));
}

describe("task hop batching", () => {
  it(`delivers ${TASKS} tasks submitted at once exactly once each, in a few acked batch messages`, {
    timeout: 180_000,
  }, async () => {
    const ex = stack.executor({ worker_init: "" });
    const square = (i: number) => i * i;
    const futures = Array.from({ length: TASKS }, (_, i) => ex.submit(square, i));
    const values = await Promise.all(futures.map((f) => f.result()));
    expect(values).toEqual(Array.from({ length: TASKS }, (_, i) => i * i));
    expect(new Set(futures.map((f) => f.taskId)).size).toBe(TASKS);

    // Once the figures caught up (every message published was acked), count the messages.
    let stats: QueueStats | undefined;
    await expect
      .poll(
        async () => {
          stats = await uepQueueStats();
          const { publish = 0, ack = -1 } = stats?.message_stats ?? {};
          return publish > 0 && publish === ack;
        },
        { timeout: 60_000, interval: 500 },
      )
      .toBe(true);
    // 1,000 tasks in requests of up to 128 tasks: one message per request, and a few more for stragglers.
    expect(stats?.message_stats?.publish).toBeLessThanOrEqual(TASKS / 10);
  });
});
