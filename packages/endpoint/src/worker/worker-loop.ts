/**
 * The loop every worker runs, whatever carries its messages (a worker
 * thread's port or a child process's IPC channel): announce readiness, then
 * run each task it is given and send back the result.
 */
import { formatLogLine, logDebugFromEnv, logFormatFromEnv } from "../logging.js";
import { executeTask } from "./execute-task.js";
import { decodeToWorker, type FromWorker } from "./worker-protocol.js";

export interface WorkerChannel {
  send(message: FromWorker): void;
  onMessage(handler: (raw: unknown) => void): void;
  /** Runs just before a task's code (a process worker notes the time, to find what the task starts). */
  beforeTask?(taskId: string): void;
  /** Runs right after a task's result was sent (a process worker ends the processes the task left). */
  afterTask?(taskId: string): void;
}

export function runWorkerLoop(channel: WorkerChannel): void {
  // A stray callback of a user's function (a timer, an event handler) may throw
  // or reject after its task ended; that must not take the worker, and the
  // next task, down with it.
  process.on("uncaughtException", (err) => {
    process.stderr.write(`conduit worker ${process.pid}: uncaught exception outside a task: ${err.stack ?? err}\n`);
  });
  process.on("unhandledRejection", (reason) => {
    const text = reason instanceof Error ? (reason.stack ?? reason.message) : String(reason);
    process.stderr.write(`conduit worker ${process.pid}: unhandled rejection outside a task: ${text}\n`);
  });

  // Its stderr is its UEP's endpoint.log (or its block's stderr file): with `debug: true` each task is named there.
  const debug = logDebugFromEnv();
  const format = debug ? logFormatFromEnv() : "json";
  const name = `worker ${process.env.CONDUIT_WORKER_RANK ?? process.pid}`;
  channel.onMessage((raw) => {
    const { task } = decodeToWorker(raw);
    if (debug) {
      process.stderr.write(
        formatLogLine(format, "DEBUG", name, `Task ${task.taskId} started`, {
          task_id: task.taskId,
          reqId: task.requestId,
          block_id: process.env.CONDUIT_BLOCK_ID,
        }),
      );
    }
    channel.beforeTask?.(task.taskId);
    void executeTask(task).then((result) => {
      channel.send({ v: 1, cmd: "result", result });
      channel.afterTask?.(task.taskId);
    });
  });
  channel.send({ v: 1, cmd: "ready" });
}
