/**
 * Reads the UEP's bootstrap: the first line of stdin, JSON, written by the MEP.
 * The stream is left flowing afterwards (its further bytes are discarded) so
 * that its end can tell the UEP that the MEP is gone.
 */
import { ConduitError } from "@conduit/protocol/wire";
import type { UepBootstrap } from "./bootstrap-types.js";

export const MISSING_BOOTSTRAP_MESSAGE =
  "Missing or invalid endpoint information from stdin. (Hint: this command is not meant to be invoked manually; the endpoint manager starts it.)";

/** Well above any real template and its siblings; stops a runaway writer from filling memory. */
const MAX_BOOTSTRAP_BYTES = 64 * 1024 * 1024;

/** The bootstrap is missing, not JSON, or not a bootstrap. */
export class BootstrapError extends ConduitError {
  constructor(detail: string) {
    super("UEP_BOOTSTRAP_INVALID", `${MISSING_BOOTSTRAP_MESSAGE} (${detail})`);
    this.name = "BootstrapError";
  }
}

export interface BootstrapLine {
  line: string;
  /** stdin had already ended when the line was complete: the MEP is gone. */
  ended: boolean;
}

/** Resolves with the first line of `stdin` (without its newline); rejects on a TTY or an empty stream. */
export function readBootstrapLine(stdin: NodeJS.ReadableStream): Promise<BootstrapLine> {
  if ((stdin as { isTTY?: boolean }).isTTY) return Promise.reject(new BootstrapError("stdin is a terminal"));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (ended: boolean): void => {
      if (done) return;
      done = true;
      stdin.removeListener("data", onData);
      stdin.removeListener("end", onEnd);
      stdin.removeListener("error", onError);
      // Keep draining: a paused stream would never report its end.
      stdin.on("data", discard);
      const text = Buffer.concat(chunks).toString("utf8");
      const newline = text.indexOf("\n");
      const line = (newline === -1 ? text : text.slice(0, newline)).trim();
      if (line === "") reject(new BootstrapError("stdin was empty"));
      else resolve({ line, ended });
    };
    const onData = (chunk: Buffer | string): void => {
      const buf = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
      chunks.push(buf);
      size += buf.length;
      if (buf.includes(0x0a)) finish(false);
      else if (size > MAX_BOOTSTRAP_BYTES) {
        done = true;
        stdin.removeListener("data", onData);
        reject(new BootstrapError(`the first line is longer than ${MAX_BOOTSTRAP_BYTES} bytes`));
      }
    };
    const onEnd = (): void => finish(true);
    const onError = (err: Error): void => {
      if (done) return;
      done = true;
      reject(new BootstrapError(`stdin failed: ${err.message}`));
    };
    stdin.on("data", onData);
    stdin.once("end", onEnd);
    stdin.once("error", onError);
  });
}

function discard(): void {}

/** Parses and checks the bootstrap line; throws a BootstrapError naming the first bad field. */
export function parseBootstrap(line: string): UepBootstrap {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new BootstrapError("stdin is not JSON");
  }
  if (!isObject(value)) throw new BootstrapError("stdin is not a JSON object");
  const b = value as Record<string, unknown>;
  if (b.v !== 1) throw new BootstrapError(`version ${String(b.v)} is not 1; upgrade the older program`);
  for (const key of ["endpointId", "uepId", "uepName", "amqpUrl", "serviceUser"] as const) {
    if (typeof b[key] !== "string" || b[key] === "") throw new BootstrapError(`${key} is not a non-empty string`);
  }
  if (!Number.isInteger(b.mepPid)) throw new BootstrapError("mepPid is not an integer");
  const template = b.template;
  if (
    !isObject(template) ||
    !(
      typeof template.error === "string" ||
      (typeof template.name === "string" && typeof template.text === "string" && isObject(template.siblings))
    )
  ) {
    throw new BootstrapError("template is neither {name, text, siblings} nor {error}");
  }
  if (b.schema !== null && typeof b.schema !== "string") throw new BootstrapError("schema is not a string or null");
  for (const key of ["userEnvironment", "userConfig", "parentConfig", "identity"] as const) {
    if (!isObject(b[key])) throw new BootstrapError(`${key} is not an object`);
  }
  for (const key of ["userRuntime", "mappedIdentity"] as const) {
    if (b[key] !== null && !isObject(b[key])) throw new BootstrapError(`${key} is not an object or null`);
  }
  const allowed = b.allowedFunctions;
  if (allowed !== null && !(Array.isArray(allowed) && allowed.every((f) => typeof f === "string"))) {
    throw new BootstrapError("allowedFunctions is not a list of strings or null");
  }
  if (b.auditFd != null && !(Number.isInteger(b.auditFd) && (b.auditFd as number) > 2)) {
    throw new BootstrapError("auditFd is not a descriptor number above 2 or null");
  }
  return value as unknown as UepBootstrap;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
