/**
 * The task hop's batching: the tasks of one publish (one submit) that go to
 * the same UEP queue travel as `tasks` messages of up to `maxCount` tasks and
 * `maxBytes` of payload (function and arguments) each, rather than one
 * persistent message per task. A lone task, or one bigger than `maxBytes`,
 * goes alone as a plain `task` message. Order within a queue is kept, and
 * every other message (commands, cancels, results) passes through unchanged,
 * in place, so a `cancel` still follows the tasks it names.
 *
 * No linger: a submit's tasks are all at hand when it publishes, and the SDK
 * already groups concurrent submits into requests of up to 128 tasks, so
 * waiting for other submits would only add latency (see README, "Task hop
 * batching").
 */
import type { TaskMessage } from "@conduit/protocol";
import type { Outgoing } from "./service-broker.js";

export interface TaskBatchLimits {
  /** Most tasks per message. @default 128 */
  maxCount?: number;
  /** Most payload bytes (function + args data) per message; a bigger task goes alone. @default 1 MiB */
  maxBytes?: number;
}

export const DEFAULT_TASK_BATCH_COUNT = 128;
export const DEFAULT_TASK_BATCH_BYTES = 1024 * 1024;

/** Rough size of what a task carries; the envelope (ids, a few hundred bytes) is counted as 300. */
export function taskBytes(task: TaskMessage): number {
  return 300 + task.function.data.length + task.args.data.length;
}

interface OpenBatch {
  queue: string;
  requestId?: string;
  tasks: TaskMessage[];
  bytes: number;
}

/** Groups the task messages of `messages` per queue into batches within `limits`. */
export function batchTaskMessages(messages: readonly Outgoing[], limits: TaskBatchLimits = {}): Outgoing[] {
  const maxCount = limits.maxCount ?? DEFAULT_TASK_BATCH_COUNT;
  const maxBytes = limits.maxBytes ?? DEFAULT_TASK_BATCH_BYTES;
  if (!Number.isInteger(maxCount) || maxCount < 1) {
    throw new Error(`Task batch maxCount is ${maxCount}; use a whole number of at least 1.`);
  }
  if (!(maxBytes > 0)) throw new Error(`Task batch maxBytes is ${maxBytes}; use a positive number of bytes.`);
  const out: Array<Outgoing | OpenBatch> = [];
  const open = new Map<string, OpenBatch>();
  for (const m of messages) {
    if (m.message.kind !== "task") {
      // Tasks after it in its queue stay after it.
      for (const [key, batch] of open) if (batch.queue === m.queue) open.delete(key);
      out.push(m);
      continue;
    }
    const task = m.message;
    const bytes = taskBytes(task);
    const key = `${m.queue}\u0000${m.requestId ?? ""}`;
    let batch = open.get(key);
    if (batch && (batch.tasks.length >= maxCount || batch.bytes + bytes > maxBytes)) batch = undefined;
    if (!batch) {
      batch = { queue: m.queue, tasks: [], bytes: 0 };
      if (m.requestId !== undefined) batch.requestId = m.requestId;
      out.push(batch);
      open.set(key, batch);
    }
    batch.tasks.push(task);
    batch.bytes += bytes;
  }
  return out.map((entry): Outgoing => {
    if (!("tasks" in entry)) return entry;
    const message: Outgoing["message"] =
      entry.tasks.length === 1 ? (entry.tasks[0] as TaskMessage) : { v: 1, kind: "tasks", tasks: entry.tasks };
    return entry.requestId === undefined
      ? { queue: entry.queue, message }
      : { queue: entry.queue, message, requestId: entry.requestId };
  });
}
