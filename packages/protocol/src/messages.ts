/**
 * Messages on the broker. Every message is UTF-8 JSON carrying `v` (the
 * protocol version) and `kind`; {@link decodeMessage} checks both at the edge
 * so nothing malformed gets further.
 */
import { ConduitError, type WireError } from "./errors.js";
import type { Payload } from "./serialization.js";

export const PROTOCOL_VERSION = 1;

/** Identity of a submitter, as the endpoint sees it. */
export interface IdentityInfo {
  /** Stable UUID of the identity. */
  id: string;
  /** `username@domain`. */
  username: string;
  name?: string;
  email?: string;
  organization?: string;
  identity_provider?: string;
}

/** Runtime of the submitting SDK (part of the UEP id, and a template variable). */
export interface UserRuntime {
  node_version: string;
  sdk_version: string;
  platform: string;
  arch: string;
  hostname: string;
}

/** service → UEP: one task. */
export interface TaskMessage {
  v: 1;
  kind: "task";
  taskId: string;
  functionId: string;
  endpointId: string;
  uepId: string;
  taskGroupId: string;
  /** The function, as the SDK serialized it (e.g. `conduit.SourceCode`). */
  function: Payload;
  /** The arguments, as the SDK serialized them (e.g. `conduit.JSONData` of `{args, kwargs}`). */
  args: Payload;
  resourceSpecification?: Record<string, unknown>;
  /**
   * Node and SDK versions of the submitter (from the submit's `user_runtime`):
   * a `conduit.StructuredData` payload from a newer Node major than the
   * worker's fails naming both versions.
   */
  submitter?: { nodeVersion: string; sdkVersion: string };
}

/**
 * service → UEP (on the UEP's task queue, after the tasks it names): these
 * tasks were cancelled before they started. A UEP that still holds one
 * (queued, not yet handed to its engine) drops it and reports nothing; the
 * service already stored `cancelled` and told the submitter.
 */
export interface CancelTasksMessage {
  v: 1;
  kind: "cancel";
  endpointId: string;
  uepId: string;
  taskIds: string[];
}

/** UEP → service → SDK: the outcome of one task. */
export interface ResultMessage {
  v: 1;
  kind: "result";
  taskId: string;
  endpointId: string;
  uepId: string;
  /** Filled in by the service before it forwards the result to the SDK. */
  taskGroupId?: string;
  /** `cancelled` only from the service (a cancel before the task started), never from a UEP. */
  state: "success" | "failed" | "cancelled";
  result?: Payload;
  error?: WireError;
  /** Milliseconds since the epoch. */
  completedAt: number;
}

/**
 * UEP → service and service → SDK: several results in one message, so a burst
 * of results costs the broker one persistent, confirmed message per batch
 * rather than one per task. Receivers accept `result` and `results` alike.
 */
export interface ResultBatchMessage {
  v: 1;
  kind: "results";
  results: ResultMessage[];
}

/**
 * UEP → service: tasks that moved to `running` (handed to the engine). Batched:
 * one message per few milliseconds, not one per task.
 */
export interface TaskStatusMessage {
  v: 1;
  kind: "task_status";
  endpointId: string;
  uepId: string;
  state: "running";
  taskIds: string[];
  sentAt: number;
}

/** service → MEP: start (or make sure there is) the UEP for this (identity, config, runtime). */
export interface StartUepCommand {
  v: 1;
  kind: "start_uep";
  endpointId: string;
  uepId: string;
  /** `uep.<endpoint id>.<uep id>`. */
  uepName: string;
  identity: IdentityInfo;
  userEndpointConfig: Record<string, unknown>;
  userRuntime: UserRuntime | null;
  /**
   * The broker URL (with credentials scoped to this UEP's queue) the MEP hands
   * the UEP instead of its own; absent when the service does not scope accounts.
   */
  amqpUrl?: string;
  /** Milliseconds since the epoch; commands much older than now are ignored. */
  sentAt: number;
}

export type CommandMessage = StartUepCommand;

/** MEP/UEP → service: liveness and state. */
export interface HeartbeatMessage {
  v: 1;
  kind: "heartbeat";
  role: "mep" | "uep";
  endpointId: string;
  uepId?: string;
  /** Seconds until the next heartbeat; 0 means "shutting down". */
  period: number;
  /** Set when the process failed (e.g. a UEP whose template did not render). */
  error?: WireError;
  sentAt: number;
}

export type BrokerMessage =
  | TaskMessage
  | CancelTasksMessage
  | ResultMessage
  | ResultBatchMessage
  | TaskStatusMessage
  | StartUepCommand
  | HeartbeatMessage;

export function encodeMessage(message: BrokerMessage): Buffer {
  return Buffer.from(JSON.stringify(message));
}

/** Decodes and checks a broker message; throws a ConduitError naming what is wrong. */
export function decodeMessage<K extends BrokerMessage["kind"]>(
  content: Buffer | string,
  ...kinds: K[]
): Extract<BrokerMessage, { kind: K }> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof content === "string" ? content : content.toString("utf8"));
  } catch (err) {
    throw new ConduitError("BAD_MESSAGE", "Broker message is not JSON; it was dropped.", { cause: err });
  }
  if (typeof parsed !== "object" || parsed === null) {
    throw new ConduitError("BAD_MESSAGE", "Broker message is not a JSON object; it was dropped.");
  }
  const { v, kind } = parsed as { v?: unknown; kind?: unknown };
  if (v !== PROTOCOL_VERSION) {
    throw new ConduitError(
      "PROTOCOL_VERSION",
      `Broker message has protocol version ${String(v)}, this program speaks ${PROTOCOL_VERSION}; upgrade the older side.`,
    );
  }
  if (!kinds.includes(kind as K)) {
    throw new ConduitError("BAD_MESSAGE", `Broker message of kind ${String(kind)} is not one of ${kinds.join(", ")}.`);
  }
  return parsed as Extract<BrokerMessage, { kind: K }>;
}
