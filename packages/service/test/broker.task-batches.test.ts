/**
 * The task hop's batching bounds (`batchTaskMessages`): tasks of one publish
 * are grouped per UEP queue, at most `maxCount` tasks and `maxBytes` of
 * payload per message, in order; a lone or oversized task goes alone as a
 * plain `task`; other messages pass through in place.
 */
import { randomUUID } from "node:crypto";
import {
  type BrokerMessage,
  type CancelTasksMessage,
  decodeMessage,
  encodeMessage,
  type TaskMessage,
} from "@conduit/protocol";
import { describe, expect, it } from "vitest";
import type { Outgoing } from "../src/broker/service-broker.js";
import { batchTaskMessages, DEFAULT_TASK_BATCH_COUNT, taskBytes } from "../src/broker/task-batches.js";

const endpointId = randomUUID();
const uepId = randomUUID();

function task(dataBytes = 10): TaskMessage {
  return {
    v: 1,
    kind: "task",
    taskId: randomUUID(),
    functionId: randomUUID(),
    endpointId,
    uepId,
    taskGroupId: randomUUID(),
    function: { strategy: "conduit.SourceCode", data: "() => null" },
    args: { strategy: "conduit.JSONData", data: "x".repeat(dataBytes) },
  };
}

const to = (queue: string, message: BrokerMessage, requestId?: string): Outgoing =>
  requestId === undefined ? { queue, message } : { queue, message, requestId };

/** The task ids each output message carries, per queue, in order. */
function ids(out: Outgoing[]): Array<[string, string[]]> {
  return out.map((m) => {
    const msg = m.message;
    if (msg.kind === "task") return [m.queue, [msg.taskId]];
    if (msg.kind === "tasks") return [m.queue, msg.tasks.map((t) => t.taskId)];
    return [m.queue, [msg.kind]];
  });
}

describe("batchTaskMessages", () => {
  it("puts the tasks for one queue in one tasks message, in order, that decodes as sent", () => {
    const tasks = [task(), task(), task()];
    const out = batchTaskMessages(tasks.map((t) => to("q", t, "req-1")));
    expect(out).toHaveLength(1);
    expect(out[0]?.requestId).toBe("req-1");
    expect(ids(out)).toEqual([["q", tasks.map((t) => t.taskId)]]);
    const wire = decodeMessage(encodeMessage(out[0]!.message), "task", "tasks");
    expect(wire).toEqual({ v: 1, kind: "tasks", tasks });
  });

  it("sends a lone task as a plain task message", () => {
    const t = task();
    expect(batchTaskMessages([to("q", t)])).toEqual([to("q", t)]);
  });

  it("closes a batch at maxCount tasks", () => {
    const tasks = Array.from({ length: 7 }, () => task());
    const out = batchTaskMessages(
      tasks.map((t) => to("q", t)),
      { maxCount: 3 },
    );
    expect(ids(out).map(([, i]) => i.length)).toEqual([3, 3, 1]);
    expect(ids(out).flatMap(([, i]) => i)).toEqual(tasks.map((t) => t.taskId));
  });

  it("uses the default count bound (the SDK's request size)", () => {
    const out = batchTaskMessages(Array.from({ length: DEFAULT_TASK_BATCH_COUNT + 1 }, () => to("q", task())));
    expect(ids(out).map(([, i]) => i.length)).toEqual([DEFAULT_TASK_BATCH_COUNT, 1]);
  });

  it("closes a batch before maxBytes of payload, and sends a bigger task alone", () => {
    const small = task(100);
    const limit = 3 * taskBytes(small);
    const tasks = [task(100), task(100), task(100), task(100), task(5 * limit), task(100)];
    const out = batchTaskMessages(
      tasks.map((t) => to("q", t)),
      { maxBytes: limit },
    );
    expect(ids(out).map(([, i]) => i.length)).toEqual([3, 1, 1, 1]);
    expect(out[2]?.message.kind).toBe("task");
    for (const m of out) {
      const batch = m.message.kind === "tasks" ? m.message.tasks : [m.message as TaskMessage];
      if (batch.length > 1) expect(batch.reduce((sum, t) => sum + taskBytes(t), 0)).toBeLessThanOrEqual(limit);
    }
  });

  it("batches per queue and request, and leaves other messages in place", () => {
    const [a1, b1, a2, b2] = [task(), task(), task(), task()];
    const command = { ...(a1 as TaskMessage), kind: "cancel", taskIds: [] } as unknown as CancelTasksMessage;
    const out = batchTaskMessages([
      to("qa", a1!),
      to("qb", b1!),
      to("qa", a2!),
      to("qb", b2!),
      to("commands", command),
    ]);
    expect(ids(out)).toEqual([
      ["qa", [a1!.taskId, a2!.taskId]],
      ["qb", [b1!.taskId, b2!.taskId]],
      ["commands", ["cancel"]],
    ]);
  });

  it("keeps a task published after a cancel to its queue after that cancel", () => {
    const [t1, t2] = [task(), task()];
    const cancel: CancelTasksMessage = { v: 1, kind: "cancel", endpointId, uepId, taskIds: [t1!.taskId] };
    const out = batchTaskMessages([to("q", t1!), to("q", cancel), to("q", t2!)]);
    expect(ids(out)).toEqual([
      ["q", [t1!.taskId]],
      ["q", ["cancel"]],
      ["q", [t2!.taskId]],
    ]);
  });

  it("refuses bounds that cannot hold a task, naming the fix", () => {
    expect(() => batchTaskMessages([], { maxCount: 0 })).toThrow(
      "Task batch maxCount is 0; use a whole number of at least 1.",
    );
    expect(() => batchTaskMessages([], { maxBytes: 0 })).toThrow(
      "Task batch maxBytes is 0; use a positive number of bytes.",
    );
  });
});
