import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import {
  type CancelTasksMessage,
  DEFAULT_AMQP_URL,
  deserializeData,
  encodeMessage,
  type TaskMessage,
} from "@conduit/protocol";
import amqp from "amqplib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createBrokerUser } from "../../../scripts/local-stack.mjs";
import { THREAD_POOL_TEMPLATE, UepHarness } from "./user-endpoint.harness.js";

const WAIT = { timeout: 20_000, interval: 50 };

describe("user endpoint process: tasks", () => {
  let h: UepHarness;
  beforeEach(async () => {
    h = await new UepHarness().open();
  });
  afterEach(async () => {
    await h.close();
  });

  it("runs queued tasks, reports them running, publishes results, acks only then, and stops on SIGTERM", async () => {
    const quick = h.task();
    const slow = h.task({
      source: "async (x) => { await new Promise((r) => setTimeout(r, 1500)); return x * 2; }",
      args: [21],
    });
    await h.publish(quick, slow);
    const uep = h.start();

    await expect.poll(() => h.resultOf(quick.taskId), WAIT).toBeDefined();
    const result = h.resultOf(quick.taskId)!;
    expect(result).toMatchObject({ kind: "result", state: "success", endpointId: h.endpointId, uepId: h.uepId });
    // Results travel in `results` messages (one per batch), never alone.
    expect(h.resultKinds).toEqual(new Set(["results"]));
    expect(deserializeData(result.result!)).toBe(42);

    // The slow task is reported running (batched) before its result.
    await expect.poll(() => h.resultOf(slow.taskId), WAIT).toBeDefined();
    expect(h.arrivals.filter((a) => a.endsWith(slow.taskId))).toEqual([
      `running ${slow.taskId}`,
      `result ${slow.taskId}`,
    ]);
    expect(deserializeData(h.resultOf(slow.taskId)!.result!)).toBe(42);
    expect(h.statuses.every((s) => s.state === "running" && s.uepId === h.uepId)).toBe(true);
    expect(h.heartbeats.some((b) => b.role === "uep" && b.uepId === h.uepId && b.period === 1)).toBe(true);

    uep.child.kill("SIGTERM");
    expect(await uep.exit).toEqual({ code: 0, signal: null });
    await expect.poll(() => h.heartbeats.some((b) => b.period === 0), WAIT).toBe(true);
    // Both deliveries were acked: nothing went back to the queue when the UEP's connection closed.
    expect(await h.queueDepth()).toBe(0);
    expect(h.results.filter((r) => r.taskId === quick.taskId)).toHaveLength(1);
    expect(h.log()).toContain("Received SIGTERM; shutting down");
  });

  it("publishes results in batches: many quick tasks take fewer result messages than tasks, all acked", async () => {
    const tasks = Array.from({ length: 300 }, (_, i) => h.task({ source: "(x) => x", args: [i] }));
    await h.publish(...tasks);
    const uep = h.start();
    await expect.poll(() => h.results.length, { ...WAIT, timeout: 40_000 }).toBe(tasks.length);
    expect(new Set(h.results.map((r) => r.taskId))).toEqual(new Set(tasks.map((t) => t.taskId)));
    expect(tasks.every((t, i) => deserializeData(h.resultOf(t.taskId)!.result!) === i)).toBe(true);
    expect(h.resultMessages).toBeLessThan(tasks.length);
    uep.child.kill("SIGTERM");
    expect((await uep.exit).code).toBe(0);
    // Every delivery was acked once its batch was confirmed: nothing went back to the queue.
    expect(await h.queueDepth()).toBe(0);
    expect(h.results).toHaveLength(tasks.length);
  });

  it("runs a task delivered twice only once, and acks both deliveries", async () => {
    const task = h.task({
      source:
        "async () => { await new Promise((r) => setTimeout(r, 1000)); return process.hrtime.bigint().toString(); }",
      args: [],
    });
    const uep = h.start();
    await h.publish(task);
    await expect.poll(() => h.statuses.flatMap((s) => s.taskIds), WAIT).toContain(task.taskId);
    await h.publish(task);
    await expect.poll(() => h.resultOf(task.taskId)?.state, WAIT).toBe("success");
    uep.child.kill("SIGTERM");
    expect((await uep.exit).code).toBe(0);
    expect(h.results.filter((r) => r.taskId === task.taskId)).toHaveLength(1);
    expect(await h.queueDepth()).toBe(0);
    expect(h.log()).not.toContain("Ignoring a second result");
  });

  it("takes tasks and cancels only from the service's broker user; others are acked and dropped", async () => {
    const intruder = await createBrokerUser(DEFAULT_AMQP_URL);
    const forger = await amqp.connect(intruder.url);
    const guest = await amqp.connect(DEFAULT_AMQP_URL);
    try {
      const kept = h.task();
      const forged = h.task({ source: "() => 'forged'", args: [] });
      const unsigned = h.task({ source: "() => 'unsigned'", args: [] });
      // A cancel for `kept` ahead of it: were it taken, `kept` would be dropped unrun.
      const cancel: CancelTasksMessage = {
        v: 1,
        kind: "cancel",
        endpointId: h.endpointId,
        uepId: h.uepId,
        taskIds: [kept.taskId],
      };
      const ch = await forger.createConfirmChannel();
      ch.sendToQueue(h.queue, encodeMessage(cancel), { persistent: true, userId: intruder.name });
      ch.sendToQueue(h.queue, encodeMessage(forged), { persistent: true, userId: intruder.name });
      await ch.waitForConfirms();
      // The service's own account, but no user-id: nothing proves the sender.
      const plain = await guest.createConfirmChannel();
      plain.sendToQueue(h.queue, encodeMessage(unsigned), { persistent: true });
      await plain.waitForConfirms();
      await h.publish(kept);
      const uep = h.start();

      await expect.poll(() => h.resultOf(kept.taskId)?.state, WAIT).toBe("success");
      uep.child.kill("SIGTERM");
      expect((await uep.exit).code).toBe(0);
      expect(h.results.map((r) => r.taskId)).toEqual([kept.taskId]);
      // Acked, not left to be redelivered to the next UEP.
      expect(await h.queueDepth()).toBe(0);
      const refused = h
        .log()
        .split("\n")
        .filter((l) => l.includes("Refused a message in"));
      expect(refused).toHaveLength(2);
      expect(refused[0]).toContain(
        `Refused a message in ${h.queue}: only guest may send tasks, sent by broker account ${intruder.name}; it was dropped.`,
      );
      expect(refused[1]).toContain("sent by broker account (no user-id); it was dropped.");
    } finally {
      await forger.close().catch(() => undefined);
      await guest.close().catch(() => undefined);
      await intruder.dispose();
    }
  });

  it("runs tasks on a ProcessPoolEngine too", async () => {
    const uep = h.start({ template: "engine:\n  type: ProcessPoolEngine\n  max_workers: 1\nheartbeat_period: 1\n" });
    const task = h.task({ source: "() => process.pid", args: [] });
    await h.publish(task);
    await expect.poll(() => h.resultOf(task.taskId)?.state, WAIT).toBe("success");
    expect(JSON.parse(h.resultOf(task.taskId)!.result!.data)).not.toBe(uep.child.pid);
    uep.child.stdin!.end();
    expect((await uep.exit).code).toBe(0);
  });

  it("refuses functions outside the allow list; config.yaml's list overrides the template's", async () => {
    const [inTemplate, inConfigYaml] = [randomUUID(), randomUUID()];
    const template = `${THREAD_POOL_TEMPLATE}allowed_functions:\n  - ${inTemplate}\n`;
    const refused = h.task({ functionId: inTemplate });
    const allowed = h.task({ functionId: inConfigYaml });
    await h.publish(refused, allowed);
    const uep = h.start({ template, allowedFunctions: [inConfigYaml] });

    await expect.poll(() => h.resultOf(refused.taskId), WAIT).toBeDefined();
    expect(h.resultOf(refused.taskId)).toMatchObject({
      state: "failed",
      error: { code: "FUNCTION_NOT_ALLOWED", message: `Function ${inTemplate} not permitted on endpoint ${h.uepId}` },
    });
    await expect.poll(() => h.resultOf(allowed.taskId)?.state, WAIT).toBe("success");
    uep.child.kill("SIGTERM");
    expect((await uep.exit).code).toBe(0);
  });

  it("applies the template's allow list when config.yaml has none", async () => {
    const permitted = randomUUID();
    const other = h.task();
    const uep = h.start({ template: `${THREAD_POOL_TEMPLATE}allowed_functions: [${permitted}]\n` });
    await h.publish(other, h.task({ functionId: permitted }));
    await expect.poll(() => h.results.length, WAIT).toBe(2);
    expect(h.resultOf(other.taskId)?.error?.message).toBe(
      `Function ${other.functionId} not permitted on endpoint ${h.uepId}`,
    );
    expect(h.results.filter((r) => r.state === "success")).toHaveLength(1);
    uep.child.kill("SIGTERM");
    await uep.exit;
  });

  it("fails a malformed task naming its field, drops one without a sound task id, and runs the next", async () => {
    const malformed = { ...h.task(), args: 1 } as unknown as TaskMessage;
    const nameless = { ...h.task(), taskId: "nope" } as unknown as TaskMessage;
    const good = h.task();
    await h.publish(malformed, nameless, good);
    const uep = h.start();
    await expect.poll(() => h.resultOf(good.taskId)?.state, WAIT).toBe("success");
    await expect.poll(() => h.resultOf(malformed.taskId), WAIT).toBeDefined();
    expect(h.resultOf(malformed.taskId)).toMatchObject({
      state: "failed",
      error: {
        code: "BAD_TASK",
        message: `Task ${malformed.taskId} is malformed: args is not an object; it was not run (resubmit it with a current SDK).`,
      },
    });
    expect(h.log()).toContain(
      "Dropped a malformed task message: Broker message task: taskId is not a UUID; it was dropped.",
    );
    // Every delivery was acked, the dropped one included.
    await expect.poll(() => h.queueDepth(), WAIT).toBe(0);
    uep.child.kill("SIGTERM");
    await uep.exit;
  });

  it("refuses payloads whose serializer engine.allowed_serializers does not allow", async () => {
    const template = `engine:
  type: ThreadPoolEngine
  allowed_serializers: [conduit.BundledCode, conduit.*Data]
heartbeat_period: 1
`;
    const task = h.task();
    await h.publish(task);
    const uep = h.start({ template });
    await expect
      .poll(() => h.resultOf(task.taskId), WAIT)
      .toMatchObject({
        state: "failed",
        error: { code: "DESERIALIZATION_FAILED" },
      });
    expect(h.resultOf(task.taskId)!.error!.message).toContain("Code serializer conduit.SourceCode disabled");
    uep.child.kill("SIGTERM");
    await uep.exit;
  });

  it("with debug: true logs the rendered config between sentinels; runs endpoint_setup and endpoint_teardown", async () => {
    const marker = join(h.userDir, "teardown-ran");
    const template = `debug: true
endpoint_setup: echo setting up {{ who }}
endpoint_teardown: touch ${marker}
${THREAD_POOL_TEMPLATE}`;
    const uep = h.start({ template, userConfig: { who: "alice" } });
    await expect.poll(() => h.heartbeats.length, WAIT).toBeGreaterThan(0);
    uep.child.kill("SIGINT");
    expect((await uep.exit).code).toBe(0);
    const log = h.log();
    // One JSON log line (DEBUG is level 20) holding the whole configuration.
    const config = log
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as { level: number; msg: string })
      .find((entry) => entry.msg.startsWith("Begin Conduit endpoint configuration"));
    expect(config?.level).toBe(20);
    expect(config?.msg).toMatch(/^Begin Conduit endpoint configuration \(6 lines\):\ndebug: true\n/);
    expect(config?.msg).toContain("heartbeat_period: 1\nEnd Conduit endpoint configuration");
    expect(log).toContain("[endpoint_setup] setting up alice");
    expect(existsSync(marker)).toBe(true);
  });
});
