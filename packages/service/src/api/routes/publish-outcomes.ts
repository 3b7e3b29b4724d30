/**
 * Tells submitters about tasks the service itself finished (a cancel, a forced
 * endpoint delete): one `results` message per task group queue, as the result
 * consumer forwards a UEP's results, so the SDK reads both alike.
 */
import { type ResultMessage, taskGroupResultQueue } from "@conduit/protocol";
import type { Outgoing, ServiceBroker } from "../../broker/service-broker.js";
import type { TaskRecord } from "../../store/store-types.js";

/** Publishes each task's stored outcome (state and error) to its task group's queue. */
export async function publishOutcomes(broker: ServiceBroker, tasks: readonly TaskRecord[]): Promise<void> {
  const byQueue = new Map<string, ResultMessage[]>();
  for (const task of tasks) {
    if (task.state !== "cancelled" && task.state !== "failed") continue;
    const queue = taskGroupResultQueue(task.taskGroupId);
    const results = byQueue.get(queue) ?? [];
    const message: ResultMessage = {
      v: 1,
      kind: "result",
      taskId: task.id,
      endpointId: task.endpointId,
      uepId: task.uepId,
      taskGroupId: task.taskGroupId,
      state: task.state,
      completedAt: (task.completedAt ?? new Date()).getTime(),
    };
    if (task.error) message.error = task.error;
    results.push(message);
    byQueue.set(queue, results);
  }
  if (byQueue.size === 0) return;
  await broker.ensureQueues(byQueue.keys());
  const outgoing: Outgoing[] = [...byQueue].map(([queue, results]) => ({
    queue,
    message: { v: 1, kind: "results", results },
  }));
  await broker.publishAll(outgoing);
}
