/**
 * The UEP's prefetch follows its engine's capacity (real UEP process, real
 * RabbitMQ): with 2 workers it takes 4 tasks (2 running, 2 waiting), so the
 * rest of the queue stays there for any other consumer; a batch larger than
 * that stops its consuming until it holds fewer, and nothing is lost.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type ConsumeMessage, connectBroker, DEFAULT_AMQP_URL } from "@conduit/protocol";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TaskQueueFixture } from "./user-endpoint.harness.js";

const TWO_WORKERS = `engine:
  type: ThreadPoolEngine
  max_workers: 2
heartbeat_period: 1
`;
const WAIT = { timeout: 30_000, interval: 50 };

let f: TaskQueueFixture;
beforeEach(async () => {
  f = await new TaskQueueFixture().open();
});
afterEach(async () => {
  await f.close();
});

describe("UEP prefetch sized by the engine's capacity", () => {
  it("takes 4 single-task messages with 2 workers and leaves the rest in the queue", async () => {
    const { h } = f;
    const release = join(f.scratch, "release");
    const tasks = Array.from({ length: 10 }, (_, i) => f.marking(`t${i}`, release));
    await h.publish(...tasks.map((t) => t.task));
    const uep = h.start({ template: TWO_WORKERS });
    await expect.poll(() => tasks.filter((t) => f.runs(t.marker) === 1).length, WAIT).toBe(2);
    // 2 running, 2 waiting in the UEP: the broker holds back the other 6.
    await expect.poll(() => h.queueDepth(), WAIT).toBe(6);
    const consuming = h.logLines().find((l) => l.msg.startsWith(`Consuming ${h.queue}`));
    expect(consuming?.msg).toContain("2 workers, prefetch 4");

    writeFileSync(release, "");
    for (const t of tasks) expect((await h.outcome(t.task, 30_000)).state).toBe("success");
    await f.kill(uep);
    expect(await h.queueDepth()).toBe(0);
    for (const t of tasks) expect(f.runs(t.marker)).toBe(1);
  });

  it("stops consuming while it holds a batch larger than its capacity; another consumer gets the next batches", async () => {
    const { h } = f;
    const release = join(f.scratch, "release");
    const big = Array.from({ length: 6 }, (_, i) => f.marking(`big${i}`, release));
    const next = [0, 1].map((b) => [0, 1, 2].map((i) => f.marking(`next${b}-${i}`)));
    const uep = h.start({ template: TWO_WORKERS });
    await f.publishBatch(big.map((t) => t.task));
    await expect.poll(() => big.filter((t) => f.runs(t.marker) === 1).length, WAIT).toBe(2);
    // 6 tasks held ≥ 4: the UEP cancelled its consumer.
    await expect.poll(() => f.consumers(), WAIT).toBe(0);
    for (const batch of next) await f.publishBatch(batch.map((t) => t.task));

    // Another consumer of the same queue (a second UEP would be one) gets both batches.
    const taken: ConsumeMessage[] = [];
    const other = await connectBroker(DEFAULT_AMQP_URL, {
      name: "task-prefetch-other-consumer",
      prefetch: 10,
      setup: async (channel) => {
        await channel.consume(h.queue, (message) => {
          if (message) taken.push(message);
        });
      },
    });
    await expect.poll(() => taken.length, WAIT).toBe(2);
    // Given back unacked: the UEP takes them once it holds fewer tasks than its capacity.
    await other.close();

    writeFileSync(release, "");
    for (const t of [...big, ...next.flat()]) expect((await h.outcome(t.task, 30_000)).state).toBe("success");
    await expect.poll(() => h.queueDepth(), WAIT).toBe(0);
    await f.kill(uep);
    expect(await h.queueDepth()).toBe(0);
    for (const t of [...big, ...next.flat()]) expect(f.runs(t.marker)).toBe(1);
  });
});
