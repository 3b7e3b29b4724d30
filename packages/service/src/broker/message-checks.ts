/**
 * Shape checks for what arrives from endpoints, beyond `decodeMessage`'s
 * version and kind: a malformed field must be dropped here, before it can fail
 * a whole batch in SQL (a bad uuid cast, a NUL character Postgres text cannot hold).
 */
import type { HeartbeatMessage, Payload, ResultMessage, TaskStatusMessage, WireError } from "@conduit/protocol";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: unknown): value is string {
  return typeof value === "string" && UUID.test(value);
}

function isPayload(value: unknown): value is Payload {
  const p = value as Payload;
  return typeof p === "object" && p !== null && typeof p.strategy === "string" && typeof p.data === "string";
}

function isWireError(value: unknown): value is WireError {
  const e = value as WireError;
  return typeof e === "object" && e !== null && typeof e.code === "string" && typeof e.message === "string";
}

/** The problem with a result message, or undefined when it can be stored. */
export function resultProblem(m: ResultMessage): string | undefined {
  // An item of a `results` message may be anything at all.
  if (typeof m !== "object" || m === null) return "it is not an object";
  if (!isUuid(m.taskId)) return "taskId is not a UUID";
  if (!isUuid(m.endpointId)) return "endpointId is not a UUID";
  if (m.state !== "success" && m.state !== "failed") return `state ${String(m.state)} is not success or failed`;
  if (m.result !== undefined && !isPayload(m.result)) return "result is not a {strategy, data} payload";
  if (m.error !== undefined && !isWireError(m.error)) return "error is not a {code, name, message} error";
  if (typeof m.completedAt !== "number" || !Number.isFinite(m.completedAt)) return "completedAt is not a number";
  return undefined;
}

export function taskStatusProblem(m: TaskStatusMessage): string | undefined {
  if (!isUuid(m.endpointId)) return "endpointId is not a UUID";
  if (m.state !== "running") return `state ${String(m.state)} is not running`;
  if (!Array.isArray(m.taskIds) || !m.taskIds.every(isUuid)) return "taskIds is not a list of UUIDs";
  return undefined;
}

export function heartbeatProblem(m: HeartbeatMessage): string | undefined {
  if (!isUuid(m.endpointId)) return "endpointId is not a UUID";
  if (m.role !== "mep" && m.role !== "uep") return `role ${String(m.role)} is not mep or uep`;
  if (m.role === "uep" && !isUuid(m.uepId)) return "uepId is not a UUID";
  if (typeof m.period !== "number" || !Number.isFinite(m.period) || m.period < 0) return "period is not a number >= 0";
  if (m.error !== undefined && !isWireError(m.error)) return "error is not a {code, name, message} error";
  return undefined;
}

/** Postgres text cannot hold U+0000: error texts get U+FFFD instead (results with it become failures). */
export function withoutNul<T>(value: T): T {
  if (typeof value === "string") return value.replaceAll("\u0000", "\ufffd") as T;
  if (Array.isArray(value)) return value.map(withoutNul) as T;
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withoutNul(v)])) as T;
  }
  return value;
}

export function hasNul(payload: Payload): boolean {
  return payload.data.includes("\u0000") || payload.strategy.includes("\u0000");
}
