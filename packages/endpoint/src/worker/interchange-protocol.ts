/**
 * Messages between a HighThroughputEngine's interchange (in the UEP) and the
 * block managers that connect to it over TCP, as newline-delimited JSON
 * frames, over TLS unless the engine has `encrypted: false`. The first frame
 * of a connection must be `register`, carrying the engine's secret and the
 * block manager's versions; nothing else is read before it. Both sides send
 * `heartbeat` (the interchange answers each one), so a node lost without a
 * closed connection is noticed after `heartbeat_threshold`.
 *
 * Tasks and results travel in batches (`run` carries every task ready for a
 * block, `results` every result a block has at hand), so a burst of short
 * tasks costs a few frames and writes, not one per task.
 */
import type { EngineResult, EngineTask } from "../engine-task.js";
import { describeMessage } from "./frames.js";

/**
 * The `v` of every frame. A registration is decoded whatever its `v`, so a
 * block manager of another version is told so by name, not as malformed data.
 */
export const INTERCHANGE_PROTOCOL_VERSION = 1;

/** The files of an encrypted interchange's TLS folder (engines/interchange-tls.ts makes them). */
export const TLS_FILES = {
  ca: "ca.pem",
  serverCert: "server.pem",
  serverKey: "server.key",
  clientCert: "client.pem",
  clientKey: "client.key",
} as const;

/** Longest frame read before a block has registered. */
export const MAX_REGISTRATION_CHARS = 64 * 1024;
/** Longest frame read after (a task or a result, with its payloads). */
export const MAX_FRAME_CHARS = 512 * 1024 * 1024;

/** block manager → interchange */
export type BlockMessage =
  | {
      v: 1;
      cmd: "register";
      blockId: string;
      secret: string;
      /** The block manager's pid. */
      pid: number;
      hostname: string;
      /** Workers it runs: it runs at most this many tasks at a time (and holds up to prefetch_capacity more). */
      workers: number;
      /** `process.version` of the block manager's Node. */
      nodeVersion: string;
      /** The version of the Conduit endpoint package the block manager runs. */
      conduitVersion: string;
      /** The address (host:port) it reached the interchange at. */
      via: string;
    }
  | { v: 1; cmd: "heartbeat" }
  /** Results in the order the block got them; never empty. */
  | { v: 1; cmd: "results"; results: EngineResult[] }
  /** The worker running this task died; `reason` names it, how it died, and the task. */
  | { v: 1; cmd: "lost"; taskId: string; reason: string }
  /** drain_period has passed: send no more tasks; answer `drained` once every task sent is answered. */
  | { v: 1; cmd: "drain" };

/** interchange → block manager */
export type InterchangeMessage =
  | { v: 1; cmd: "registered" }
  | { v: 1; cmd: "rejected"; reason: string }
  /** The answer to each of the block manager's heartbeats. */
  | { v: 1; cmd: "heartbeat" }
  /** Tasks to run, in order; those beyond its idle workers wait in the block manager. Never empty. */
  | { v: 1; cmd: "run"; tasks: EngineTask[] }
  /** Stop the workers and exit (scale-in, or the engine shuts down). */
  | { v: 1; cmd: "shutdown" }
  /** After a block's `drain`: it holds no task any more, and may exit. */
  | { v: 1; cmd: "drained" };

/**
 * A batch grows to about this many characters of payload, far below
 * MAX_FRAME_CHARS (and V8's longest string); a task or result bigger than this
 * travels in a frame of its own.
 */
export const BATCH_CHARS = 8 * 1024 * 1024;

/** Splits tasks or results, in order, into non-empty batches of about BATCH_CHARS of payload each. */
export function intoBatches<T extends EngineTask | EngineResult>(items: T[]): T[][] {
  const batches: T[][] = [];
  let batch: T[] = [];
  let chars = 0;
  for (const item of items) {
    const size = payloadChars(item);
    if (batch.length > 0 && chars + size > BATCH_CHARS) {
      batches.push(batch);
      batch = [];
      chars = 0;
    }
    batch.push(item);
    chars += size;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

function payloadChars(item: EngineTask | EngineResult): number {
  if ("function" in item) return item.function.data.length + item.args.data.length;
  return item.ok ? item.value.data.length : JSON.stringify(item.error).length;
}

/** A registration as it came, whatever its protocol version: the interchange checks the versions itself. */
export type Registration = Omit<Extract<BlockMessage, { cmd: "register" }>, "v"> & { v: number };

export function decodeBlockMessage(raw: unknown): BlockMessage | Registration {
  const msg = raw as Record<string, unknown> | null;
  if (
    msg?.cmd === "register" &&
    typeof msg.v === "number" &&
    typeof msg.blockId === "string" &&
    typeof msg.secret === "string" &&
    typeof msg.pid === "number" &&
    typeof msg.hostname === "string" &&
    Number.isInteger(msg.workers) &&
    (msg.workers as number) > 0 &&
    typeof msg.nodeVersion === "string" &&
    typeof msg.conduitVersion === "string" &&
    typeof msg.via === "string"
  )
    return msg as Registration;
  if (msg?.v === INTERCHANGE_PROTOCOL_VERSION) {
    switch (msg.cmd) {
      case "heartbeat":
      case "drain":
        return msg as BlockMessage;
      case "results":
        if (isListOfIdentified(msg.results)) return msg as BlockMessage;
        break;
      case "lost":
        if (typeof msg.taskId === "string" && typeof msg.reason === "string") return msg as BlockMessage;
        break;
    }
  }
  throw new Error(`malformed block message ${describeMessage(raw)}`);
}

export function decodeInterchangeMessage(raw: unknown): InterchangeMessage {
  const msg = raw as Record<string, unknown> | null;
  if (msg?.v === INTERCHANGE_PROTOCOL_VERSION) {
    switch (msg.cmd) {
      case "registered":
      case "heartbeat":
      case "shutdown":
      case "drained":
        return msg as InterchangeMessage;
      case "rejected":
        if (typeof msg.reason === "string") return msg as InterchangeMessage;
        break;
      case "run":
        if (isListOfIdentified(msg.tasks)) return msg as InterchangeMessage;
        break;
    }
  }
  throw new Error(`malformed interchange message ${describeMessage(raw)}`);
}

/** A non-empty array of tasks or results: objects with a string `taskId`. */
function isListOfIdentified(value: unknown): boolean {
  return (
    Array.isArray(value) &&
    value.length > 0 &&
    value.every((item) => typeof (item as { taskId?: unknown } | null)?.taskId === "string")
  );
}
