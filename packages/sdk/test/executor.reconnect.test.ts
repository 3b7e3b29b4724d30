/**
 * Results survive a cut broker connection: the Executor reaches RabbitMQ
 * through a TCP proxy this test controls, which drops every connection while
 * a batch of 500 results is streaming in. The link reconnects, the broker
 * redelivers what was not acked, and the Executor drops repeats, so every
 * future settles exactly once with its own value.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Executor, type ResultEvent } from "../src/executor.js";
import { startTestStack, type TestStack } from "./stack.helpers.js";
import { startTcpProxy, type TcpProxy } from "./tcp-proxy.js";

const TASKS = 500;

let env: TestStack;
let proxy: TcpProxy;

beforeAll(async () => {
  env = await startTestStack();
  proxy = await startTcpProxy({ host: "127.0.0.1", port: 5672 });
}, 120_000);

afterAll(async () => {
  await proxy?.close();
  await env?.stop();
});

describe("Executor over a broker connection that drops", () => {
  it("settles every future exactly once when the connection is reset mid-batch", async () => {
    await using ex = new Executor({ endpointId: env.endpointId, client: env.client, amqpPort: proxy.port });
    const events: ResultEvent[] = [];
    let cutAt: number | undefined;
    ex.on("result", (event) => {
      events.push(event);
      if (events.length === 50) {
        // Stall the stream first, so that results pile up unacked in the cut, then cut it.
        proxy.pause();
        cutAt = events.length;
        setTimeout(() => {
          proxy.reset();
          proxy.resume();
        }, 300);
      }
    });
    const double = (n: number) => n * 2;
    const futures = Array.from({ length: TASKS }, (_, n) => ex.submit(double, n));
    const values = await Promise.all(futures.map((f) => f.result()));

    expect(values).toEqual(Array.from({ length: TASKS }, (_, n) => n * 2));
    expect(cutAt).toBe(50);
    expect(proxy.connections).toBeGreaterThanOrEqual(2); // it did reconnect
    expect(events).toHaveLength(TASKS);
    expect(new Set(events.map((e) => e.taskId)).size).toBe(TASKS);
    for (const [n, future] of futures.entries()) {
      expect(events.find((e) => e.taskId === future.taskId)).toEqual({ taskId: future.taskId, ok: true, value: n * 2 });
    }
  }, 60_000);
});
