/**
 * Messages on the broker. Every message is UTF-8 JSON carrying `v` (the
 * protocol version) and `kind`. Each kind has one schema here, as data; the
 * TypeScript types are derived from them, and {@link decodeMessage} checks a
 * message against its kind's schema at the edge, so a receiver gets either a
 * message of exactly that shape or a {@link BadMessageError} naming the field.
 * What a receiver checks beyond the shape needs its own state (who sent it,
 * whether the command is for this endpoint).
 */
import { BadMessageError, ConduitError } from "./errors.js";
import { type Schema, type Static, schemaProblem, WIRE_ERROR_SCHEMA } from "./message-schema.js";

export const PROTOCOL_VERSION = 1;

const uuid = { type: "string", format: "uuid" } as const;
const text = { type: "string" } as const;
/** Milliseconds since the epoch. */
const timestamp = { type: "number" } as const;
const jsonObject = { type: "object" } as const;

/** A serialized function, argument list or result (a `Payload` of serialization.ts). */
const PAYLOAD_SCHEMA = {
  type: "object",
  properties: { strategy: text, data: text },
  required: ["strategy", "data"],
} as const satisfies Schema;

/** Identity of a submitter, as the endpoint sees it: `id` is its stable UUID, `username` is `username@domain`. */
const IDENTITY_SCHEMA = {
  type: "object",
  properties: {
    id: text,
    username: text,
    name: text,
    email: text,
    organization: text,
    identity_provider: text,
  },
  required: ["id", "username"],
} as const satisfies Schema;

/**
 * Runtime of the submitting SDK (part of the UEP id, and a template
 * variable). No field is required: the service accepts a partial one at submit.
 */
const USER_RUNTIME_SCHEMA = {
  type: "object",
  properties: { node_version: text, sdk_version: text, platform: text, arch: text, hostname: text },
} as const satisfies Schema;

/**
 * service → UEP: one task. `function` and `args` are as the SDK serialized
 * them; `submitter` holds the Node and SDK versions of the submitter (a
 * `conduit.StructuredData` payload from a newer Node major than the worker's
 * fails naming both versions).
 */
const TASK_SCHEMA = {
  type: "object",
  properties: {
    v: { const: 1 },
    kind: { const: "task" },
    taskId: uuid,
    functionId: uuid,
    endpointId: uuid,
    uepId: uuid,
    taskGroupId: uuid,
    function: PAYLOAD_SCHEMA,
    args: PAYLOAD_SCHEMA,
    resourceSpecification: jsonObject,
    submitter: {
      type: "object",
      properties: { nodeVersion: text, sdkVersion: text },
      required: ["nodeVersion", "sdkVersion"],
    },
  },
  required: ["v", "kind", "taskId", "functionId", "endpointId", "uepId", "taskGroupId", "function", "args"],
} as const satisfies Schema;

/**
 * service → UEP: several tasks in one persistent message (the task hop's
 * batch, as `results` is the result hop's), so a submit of many tasks costs
 * the broker one message per batch rather than one per task. Each item is a
 * whole `task`; a UEP checks each on its own (a bad one is failed or dropped,
 * the others run) and acks the message only once every task in it is settled.
 * Receivers accept `task` and `tasks` alike.
 */
const TASKS_SCHEMA = {
  type: "object",
  properties: {
    v: { const: 1 },
    kind: { const: "tasks" },
    tasks: { type: "array", items: TASK_SCHEMA },
  },
  required: ["v", "kind", "tasks"],
} as const satisfies Schema;

/**
 * service → UEP (on the UEP's task queue, after the tasks it names): these
 * tasks were cancelled before they started. A UEP that still holds one
 * (queued, not yet handed to its engine) drops it and reports nothing; the
 * service already stored `cancelled` and told the submitter.
 */
const CANCEL_SCHEMA = {
  type: "object",
  properties: {
    v: { const: 1 },
    kind: { const: "cancel" },
    endpointId: uuid,
    uepId: uuid,
    taskIds: { type: "array", items: uuid },
  },
  required: ["v", "kind", "endpointId", "uepId", "taskIds"],
} as const satisfies Schema;

/**
 * UEP → service → SDK: the outcome of one task. `taskGroupId` is filled in by
 * the service before it forwards the result; `cancelled` comes only from the
 * service (a cancel before the task started), never from a UEP. For a task of
 * a High-Assurance endpoint the service forwards only a notice: `highAssurance`
 * set, no `result` nor `error`; the SDK fetches the outcome over REST, where
 * the endpoint's policy is checked at that moment.
 */
const RESULT_SCHEMA = {
  type: "object",
  properties: {
    v: { const: 1 },
    kind: { const: "result" },
    taskId: uuid,
    endpointId: uuid,
    uepId: uuid,
    taskGroupId: uuid,
    state: { type: "string", enum: ["success", "failed", "cancelled"] },
    result: PAYLOAD_SCHEMA,
    error: WIRE_ERROR_SCHEMA,
    completedAt: timestamp,
    highAssurance: { type: "boolean" },
  },
  required: ["v", "kind", "taskId", "endpointId", "uepId", "state", "completedAt"],
} as const satisfies Schema;

/**
 * UEP → service and service → SDK: several results in one message, so a burst
 * of results costs the broker one persistent, confirmed message per batch
 * rather than one per task. Receivers accept `result` and `results` alike.
 */
const RESULTS_SCHEMA = {
  type: "object",
  properties: {
    v: { const: 1 },
    kind: { const: "results" },
    results: { type: "array", items: RESULT_SCHEMA },
  },
  required: ["v", "kind", "results"],
} as const satisfies Schema;

/**
 * UEP → service: tasks that moved to `running` (handed to the engine). Batched:
 * one message per few milliseconds, not one per task.
 */
const TASK_STATUS_SCHEMA = {
  type: "object",
  properties: {
    v: { const: 1 },
    kind: { const: "task_status" },
    endpointId: uuid,
    uepId: uuid,
    state: { const: "running" },
    taskIds: { type: "array", items: uuid },
    sentAt: timestamp,
  },
  required: ["v", "kind", "endpointId", "uepId", "state", "taskIds", "sentAt"],
} as const satisfies Schema;

/**
 * service → MEP: start (or make sure there is) the UEP for this (identity,
 * config, runtime). `uepName` is `uep.<endpoint id>.<uep id>`; `amqpUrl` is the
 * broker URL (with credentials scoped to this UEP's queue) the MEP hands the
 * UEP instead of its own, absent when the service does not scope accounts;
 * commands whose `sentAt` is much older than now are ignored.
 */
const START_UEP_SCHEMA = {
  type: "object",
  properties: {
    v: { const: 1 },
    kind: { const: "start_uep" },
    endpointId: uuid,
    uepId: uuid,
    uepName: text,
    identity: IDENTITY_SCHEMA,
    userEndpointConfig: jsonObject,
    userRuntime: { anyOf: [USER_RUNTIME_SCHEMA, { type: "null" }] },
    amqpUrl: text,
    sentAt: timestamp,
  },
  required: ["v", "kind", "endpointId", "uepId", "uepName", "identity", "userEndpointConfig", "userRuntime", "sentAt"],
} as const satisfies Schema;

/** A UEP's engine as its heartbeat reports it: workers (idle of total), tasks waiting for one, blocks. */
const ENGINE_STATUS_SCHEMA = {
  type: "object",
  properties: {
    type: text,
    totalWorkers: { type: "number", minimum: 0 },
    idleWorkers: { type: "number", minimum: 0 },
    pendingTasks: { type: "number", minimum: 0 },
    /** Providers with blocks (batch jobs, local blocks) only. */
    blocks: { type: "number", minimum: 0 },
  },
  required: ["type", "totalWorkers", "idleWorkers", "pendingTasks"],
} as const satisfies Schema;

/**
 * MEP/UEP → service: liveness and state. `period` is the seconds until the
 * next heartbeat (0 means "shutting down"); `error` is set when the process
 * failed (e.g. a UEP whose template did not render); a UEP's heartbeat names
 * its `uepId`.
 */
const HEARTBEAT_SCHEMA = {
  type: "object",
  properties: {
    v: { const: 1 },
    kind: { const: "heartbeat" },
    role: { type: "string", enum: ["mep", "uep"] },
    endpointId: uuid,
    uepId: uuid,
    period: { type: "number", minimum: 0 },
    error: WIRE_ERROR_SCHEMA,
    sentAt: timestamp,
    /**
     * A UEP's last heartbeat (period 0): tasks it leaves in its queue (running
     * ones it gave back, and those waiting), for the next UEP of that id.
     */
    tasksLeft: { type: "number", minimum: 0 },
    /** A UEP's engine, in its periodic heartbeats (the console shows it). */
    engine: ENGINE_STATUS_SCHEMA,
  },
  required: ["v", "kind", "role", "endpointId", "period", "sentAt"],
} as const satisfies Schema;

/** The schema of each message kind: what {@link decodeMessage} checks. */
export const MESSAGE_SCHEMAS = {
  task: TASK_SCHEMA,
  tasks: TASKS_SCHEMA,
  cancel: CANCEL_SCHEMA,
  result: RESULT_SCHEMA,
  results: RESULTS_SCHEMA,
  task_status: TASK_STATUS_SCHEMA,
  start_uep: START_UEP_SCHEMA,
  heartbeat: HEARTBEAT_SCHEMA,
} as const;

export type MessageKind = keyof typeof MESSAGE_SCHEMAS;

export type IdentityInfo = Static<typeof IDENTITY_SCHEMA>;
export type UserRuntime = Static<typeof USER_RUNTIME_SCHEMA>;
export type TaskMessage = Static<typeof TASK_SCHEMA>;
export type TaskBatchMessage = Static<typeof TASKS_SCHEMA>;
export type CancelTasksMessage = Static<typeof CANCEL_SCHEMA>;
export type ResultMessage = Static<typeof RESULT_SCHEMA>;
export type ResultBatchMessage = Static<typeof RESULTS_SCHEMA>;
export type TaskStatusMessage = Static<typeof TASK_STATUS_SCHEMA>;
export type StartUepCommand = Static<typeof START_UEP_SCHEMA>;
export type CommandMessage = StartUepCommand;
export type HeartbeatMessage = Static<typeof HEARTBEAT_SCHEMA>;
export type EngineStatusReport = Static<typeof ENGINE_STATUS_SCHEMA>;

export type BrokerMessage =
  | TaskMessage
  | TaskBatchMessage
  | CancelTasksMessage
  | ResultMessage
  | ResultBatchMessage
  | TaskStatusMessage
  | StartUepCommand
  | HeartbeatMessage;

/** Checks across fields, which the schema subset cannot say. */
function crossFieldProblem(message: BrokerMessage): string | undefined {
  if (message.kind === "heartbeat" && message.role === "uep" && message.uepId === undefined) {
    return "uepId is missing (a uep heartbeat names its UEP)";
  }
  return undefined;
}

/**
 * Payload data at least this long is copied into the message's bytes as it is
 * rather than through JSON.stringify (which scans it for escapes into a new
 * string, then Buffer.from copies that again): a 5 MiB result is 7 MB of
 * base64 on every hop.
 */
const SPLICE_MIN = 64 * 1024;
/** Anything but the ASCII a JSON string holds unescaped: such data goes through JSON.stringify. Base64 never has it. */
const NOT_PLAIN_JSON_ASCII = /[^\x20\x21\x23-\x5b\x5d-\x7e]/;
/** Stands in for spliced payload `i`'s data in the JSON text (private-use characters; each must then occur once). */
const spliceMark = (i: number) => `\ue000conduit-payload-data-${i}\ue000`;
const SPLICE_MARKS = /\ue000conduit-payload-data-(\d+)\ue000/;

export function encodeMessage(message: BrokerMessage): Buffer {
  const spliced: string[] = [];
  const skeleton = withMarks(message, spliced);
  const text = JSON.stringify(skeleton);
  if (spliced.length === 0) return Buffer.from(text);
  // [text, index, text, index, …, text]: the marks in the order JSON.stringify wrote them.
  const parts = text.split(SPLICE_MARKS);
  const order = parts.filter((_, i) => i % 2 === 1).map(Number);
  // A mark in a field of the message's own (an error text) would misplace the data: encode it plainly.
  if (order.length !== spliced.length || new Set(order).size !== spliced.length) {
    return Buffer.from(JSON.stringify(message));
  }
  let size = 0;
  for (let i = 0; i < parts.length; i += 2) size += Buffer.byteLength(parts[i] as string);
  for (const data of spliced) size += data.length;
  const bytes = Buffer.allocUnsafe(size);
  let offset = 0;
  for (let i = 0; i < parts.length; i += 2) {
    offset += bytes.write(parts[i] as string, offset, "utf8");
    if (i + 1 < parts.length) offset += bytes.write(spliced[order[i / 2] as number] as string, offset, "latin1");
  }
  return bytes;
}

/** The message with each big, plain-ASCII payload's data replaced by a {@link spliceMark} of its index in `spliced`. */
function withMarks(message: BrokerMessage, spliced: string[]): BrokerMessage {
  const marked = (item: Record<string, unknown>): Record<string, unknown> => {
    let out = item;
    for (const key of ["function", "args", "result"]) {
      const payload = item[key] as { data?: unknown } | undefined;
      const data = payload?.data;
      if (typeof data !== "string" || data.length < SPLICE_MIN || NOT_PLAIN_JSON_ASCII.test(data)) continue;
      out = { ...out, [key]: { ...payload, data: spliceMark(spliced.push(data) - 1) } };
    }
    return out;
  };
  if (message.kind === "results") {
    return { ...message, results: message.results.map((r) => marked(r) as ResultMessage) };
  }
  if (message.kind === "tasks") {
    return { ...message, tasks: message.tasks.map((t) => marked(t) as TaskMessage) };
  }
  if (message.kind === "result" || message.kind === "task") return marked(message) as BrokerMessage;
  return message;
}

/**
 * Decodes a broker message of one of `kinds` and checks its whole shape
 * against its kind's schema. Throws a {@link BadMessageError} naming the field
 * (`Broker message results: results[3].taskId is not a UUID; it was dropped.`),
 * or a `PROTOCOL_VERSION` ConduitError for another protocol version.
 */
export function decodeMessage<K extends MessageKind>(
  content: Buffer | string,
  ...kinds: K[]
): Extract<BrokerMessage, { kind: K }> {
  return decode(content, kinds);
}

/** The batch kinds whose items are checked one by one when decoding keeps the good ones. */
const BATCHES = {
  results: { field: "results", item: RESULT_SCHEMA, outcome: "that result was dropped" },
  tasks: { field: "tasks", item: TASK_SCHEMA, outcome: "that task was not run" },
} as const;

/**
 * As {@link decodeMessage}, except that a `results` or `tasks` message keeps
 * its good items: each malformed one is left out and handed to `onBadResult`
 * (its sentence names it, e.g. `results[3].taskId is not a UUID; that result
 * was dropped.`, and its `details.taskId` when that id is sound), so one bad
 * item does not cost the others.
 */
export function decodeMessageKeepingGoodResults<K extends MessageKind>(
  content: Buffer | string,
  kinds: readonly K[],
  onBadResult: (error: BadMessageError, index: number) => void,
): Extract<BrokerMessage, { kind: K }> {
  return decode(content, kinds, onBadResult);
}

function decode<K extends MessageKind>(
  content: Buffer | string,
  kinds: readonly K[],
  onBadResult?: (error: BadMessageError, index: number) => void,
): Extract<BrokerMessage, { kind: K }> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof content === "string" ? content : content.toString("utf8"));
  } catch (err) {
    throw new BadMessageError("Broker message is not JSON; it was dropped.", {}, { cause: err });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new BadMessageError("Broker message is not a JSON object; it was dropped.");
  }
  const record = parsed as Record<string, unknown>;
  const { v, kind } = record;
  if (v !== PROTOCOL_VERSION) {
    throw new ConduitError(
      "PROTOCOL_VERSION",
      `Broker message has protocol version ${String(v)}, this program speaks ${PROTOCOL_VERSION}; upgrade the older side.`,
    );
  }
  if (!kinds.includes(kind as K)) {
    throw new BadMessageError(`Broker message of kind ${String(kind)} is not one of ${kinds.join(", ")}.`);
  }
  const known = kind as K;
  const batch = known === "results" ? BATCHES.results : known === "tasks" ? BATCHES.tasks : undefined;
  const items = batch ? record[batch.field] : undefined;
  if (batch && onBadResult && Array.isArray(items)) {
    const good: unknown[] = [];
    for (const [index, item] of items.entries()) {
      const problem = schemaProblem(batch.item, item, `${batch.field}[${index}]`);
      if (problem === undefined) good.push(item);
      else onBadResult(badMessage(known, problem, batch.outcome, item), index);
    }
    return { ...record, [batch.field]: good } as Extract<BrokerMessage, { kind: K }>;
  }
  const problem = schemaProblem(MESSAGE_SCHEMAS[known], parsed, "") ?? crossFieldProblem(parsed as BrokerMessage);
  if (problem !== undefined) throw badMessage(known, problem, "it was dropped", parsed);
  return parsed as Extract<BrokerMessage, { kind: K }>;
}

/** `Broker message <kind>: <field> <problem>; <outcome>.`, keeping the task id when it is sound. */
function badMessage(kind: string, problem: string, outcome: string, value: unknown): BadMessageError {
  const field = problem.split(" ", 1)[0];
  const taskId = typeof value === "object" && value !== null ? (value as { taskId?: unknown }).taskId : undefined;
  const details: { kind: string; field?: string; problem: string; taskId?: string } = { kind, problem };
  if (field) details.field = field;
  if (schemaProblem(uuid, taskId, "taskId") === undefined) details.taskId = taskId as string;
  return new BadMessageError(`Broker message ${kind}: ${problem}; ${outcome}.`, details);
}
