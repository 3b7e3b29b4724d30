/**
 * Messages between a worker pool and one of its workers (a worker thread or a
 * forked worker process), over postMessage or the IPC channel. A worker runs
 * one task at a time; the pool sends a task only to a worker that is idle.
 */
import type { EngineResult, EngineTask } from "../engine-task.js";
import { describeMessage } from "./frames.js";

export const WORKER_PROTOCOL_VERSION = 1;

/** pool → worker */
export type ToWorker = { v: 1; cmd: "run"; task: EngineTask };

/** worker → pool */
export type FromWorker =
  /** The worker has loaded and takes tasks. */
  | { v: 1; cmd: "ready" }
  /** The outcome of the task it was given. */
  | { v: 1; cmd: "result"; result: EngineResult };

export function decodeToWorker(raw: unknown): ToWorker {
  const msg = raw as Partial<ToWorker> | null;
  if (msg?.v !== WORKER_PROTOCOL_VERSION || msg.cmd !== "run" || typeof msg.task?.taskId !== "string") {
    throw new Error(`Worker received a malformed message: ${describeMessage(raw)}.`);
  }
  return msg as ToWorker;
}

export function decodeFromWorker(raw: unknown): FromWorker {
  const msg = raw as { v?: unknown; cmd?: unknown; result?: { taskId?: unknown } } | null;
  if (msg?.v === WORKER_PROTOCOL_VERSION) {
    if (msg.cmd === "ready") return msg as FromWorker;
    if (msg.cmd === "result" && typeof msg.result?.taskId === "string") return msg as FromWorker;
  }
  throw new Error(`Worker sent a malformed message: ${describeMessage(raw)}.`);
}
