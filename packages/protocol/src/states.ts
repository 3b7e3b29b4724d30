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
 *
 * This list is the one definition: the REST schemas take their enum from it,
 * the store's SQL its terminal set, and a store test checks the `tasks.state`
 * check constraint of the migrations against it.
 */
export const TASK_STATES = ["received", "waiting-for-endpoint", "running", "success", "failed", "cancelled"] as const;

export type TaskState = (typeof TASK_STATES)[number];

/** The states a task never leaves. */
export const TERMINAL_TASK_STATES: ReadonlySet<TaskState> = new Set<TaskState>(["success", "failed", "cancelled"]);

/** Endpoint status as the service reports it (from MEP heartbeats). */
export const ENDPOINT_STATUSES = ["online", "offline"] as const;

export type EndpointStatus = (typeof ENDPOINT_STATUSES)[number];
