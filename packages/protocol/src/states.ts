/**
 * A task is in exactly one of these states at any time; every transition is
 * durable (a store row, a persistent AMQP message).
 *
 * - `received`: the service accepted and stored it.
 * - `waiting-for-endpoint`: published to its user endpoint's queue; no UEP has it yet.
 * - `running`: a UEP took it and handed it to its engine.
 * - `success`: the result is stored.
 * - `failed`: the function threw, or the task could not run; the error is stored.
 * - `cancelled`: cancelled before it started; it never runs.
 */
export type TaskState = "received" | "waiting-for-endpoint" | "running" | "success" | "failed" | "cancelled";

export const TASK_STATES: readonly TaskState[] = [
  "received",
  "waiting-for-endpoint",
  "running",
  "success",
  "failed",
  "cancelled",
];

export const TERMINAL_TASK_STATES: ReadonlySet<TaskState> = new Set<TaskState>(["success", "failed", "cancelled"]);

/** Endpoint status as the service reports it (from MEP heartbeats). */
export type EndpointStatus = "online" | "offline";
