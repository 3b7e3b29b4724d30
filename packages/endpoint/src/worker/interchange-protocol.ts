/**
 * Messages between a HighThroughputEngine's interchange (in the UEP) and the
 * block managers that connect to it over TCP, as newline-delimited JSON
 * frames. The first frame of a connection must be `register`, carrying the
 * engine's secret; nothing else is read before it.
 */
import type { EngineResult, EngineTask } from "../engines/engine-types.js";
import { describeMessage } from "./frames.js";

export const INTERCHANGE_PROTOCOL_VERSION = 1;

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
      /** Workers it runs: it takes at most this many tasks at a time. */
      workers: number;
      nodeVersion: string;
    }
  | { v: 1; cmd: "result"; result: EngineResult }
  /** The worker running this task died; `reason` names it, how it died, and the task. */
  | { v: 1; cmd: "lost"; taskId: string; reason: string };

/** interchange → block manager */
export type InterchangeMessage =
  | { v: 1; cmd: "registered" }
  | { v: 1; cmd: "rejected"; reason: string }
  | { v: 1; cmd: "run"; task: EngineTask }
  /** Stop the workers and exit (scale-in, or the engine shuts down). */
  | { v: 1; cmd: "shutdown" };

export function decodeBlockMessage(raw: unknown): BlockMessage {
  const msg = raw as Record<string, unknown> | null;
  if (msg?.v === INTERCHANGE_PROTOCOL_VERSION) {
    switch (msg.cmd) {
      case "register":
        if (
          typeof msg.blockId === "string" &&
          typeof msg.secret === "string" &&
          typeof msg.pid === "number" &&
          typeof msg.hostname === "string" &&
          Number.isInteger(msg.workers) &&
          (msg.workers as number) > 0
        )
          return msg as BlockMessage;
        break;
      case "result":
        if (typeof (msg.result as { taskId?: unknown } | undefined)?.taskId === "string") return msg as BlockMessage;
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
      case "shutdown":
        return msg as InterchangeMessage;
      case "rejected":
        if (typeof msg.reason === "string") return msg as InterchangeMessage;
        break;
      case "run":
        if (typeof (msg.task as { taskId?: unknown } | undefined)?.taskId === "string")
          return msg as InterchangeMessage;
        break;
    }
  }
  throw new Error(`malformed interchange message ${describeMessage(raw)}`);
}
