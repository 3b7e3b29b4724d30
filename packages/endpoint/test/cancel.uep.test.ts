/**
 * `cancel` messages in a real UEP process (on the real RabbitMQ): a task the
 * UEP holds but has not handed to its engine (its only worker is busy) is
 * dropped and never reported, not even as running; a task whose cancel arrived
 * first is dropped when it comes. The service is played by the harness.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type BrokerLink,
  type CancelTasksMessage,
  connectBroker,
  DEFAULT_AMQP_URL,
  type TaskMessage,
} from "@conduit/protocol";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { UepHarness } from "./user-endpoint.harness.js";

const ONE_WORKER = `engine:
  type: ThreadPoolEngine
  max_workers: 1
heartbeat_period: 1
`;

/** Writes `marker`, then waits until `release` exists (when given). */
const MARK_AND_WAIT = `async (marker, release) => {
  const fs = await import("node:fs");
  fs.writeFileSync(marker, "ran");
  while (release && !fs.existsSync(release)) await new Promise((r) => setTimeout(r, 20));
  return "done";
}`;

let h: UepHarness;
let scratch: string;
/** The service's part: publishes cancel messages to the UEP's queue. */
let service: BrokerLink;
beforeEach(async () => {
  h = await new UepHarness().open();
  service = await connectBroker(DEFAULT_AMQP_URL, { name: "cancel-uep-test" });
  scratch = mkdtempSync(join(tmpdir(), "conduit-cancel-uep-"));
});
afterEach(async () => {
  await service.close();
  await h.close();
  rmSync(scratch, { recursive: true, force: true });
});

async function cancel(...tasks: TaskMessage[]): Promise<void> {
  const message: CancelTasksMessage = {
    v: 1,
    kind: "cancel",
    endpointId: h.endpointId,
    uepId: h.uepId,
    taskIds: tasks.map((t) => t.taskId),
  };
  await service.publish("", h.queue, message);
}

function marking(name: string, release: string | null = null): { task: TaskMessage; marker: string } {
  const marker = join(scratch, `${name}.ran`);
  return { task: h.task({ source: MARK_AND_WAIT, args: [marker, release] }), marker };
}

describe("UEP cancel messages", () => {
  it("drops a held task named by a cancel: never run, never reported; the running one finishes", async () => {
    const release = join(scratch, "release");
    const long = marking("long", release);
    const queued = marking("queued");
    const after = marking("after");
    h.start({ template: ONE_WORKER });
    await h.publish(long.task, queued.task);
    await expect.poll(() => existsSync(long.marker), { timeout: 30_000, interval: 50 }).toBe(true);
    await cancel(queued.task);
    await expect
      .poll(() => h.log(), { timeout: 10_000 })
      .toContain(`Task ${queued.task.taskId} was cancelled before it started; dropped it`);

    writeFileSync(release, "");
    await h.publish(after.task);
    await expect.poll(() => h.resultOf(after.task.taskId)?.state, { timeout: 30_000 }).toBe("success");
    expect(h.resultOf(long.task.taskId)?.state).toBe("success");
    expect(existsSync(after.marker)).toBe(true);
    expect(existsSync(queued.marker)).toBe(false);
    expect(h.resultOf(queued.task.taskId)).toBeUndefined();
    expect(h.arrivals).not.toContain(`running ${queued.task.taskId}`);
    expect(h.arrivals).toContain(`running ${long.task.taskId}`);
    // Every delivery was acked, the dropped one included.
    expect(await h.queueDepth()).toBe(0);
  });

  it("drops a task whose cancel arrived before it", async () => {
    const early = marking("early");
    const plain = marking("plain");
    h.start({ template: ONE_WORKER });
    await cancel(early.task);
    await h.publish(early.task, plain.task);
    await expect.poll(() => h.resultOf(plain.task.taskId)?.state, { timeout: 30_000 }).toBe("success");
    expect(h.log()).toContain(`Task ${early.task.taskId} was cancelled; dropping it without running it`);
    expect(existsSync(early.marker)).toBe(false);
    expect(h.resultOf(early.task.taskId)).toBeUndefined();
    expect(h.arrivals).not.toContain(`running ${early.task.taskId}`);
    expect(await h.queueDepth()).toBe(0);
  });
});
