/**
 * The audit log of a High-Assurance MEP (`high_assurance: true` and
 * `audit_log_path` in config.yaml): one record per line, as in the seed,
 *
 *   2025-04-10T14:44:58.742079-05:00 uid=0 pid=… eid=… Begin MEP session =====
 *   2025-04-10T14:45:30.906170-05:00 uid=… pid=… uep=… fid=… tid=… bid= RECEIVED
 *
 * The file is created with mode 0600 when absent and never checked again. Only
 * the MEP writes it: each UEP sends its task records through its own channel
 * (see {@link AuditLog.follow}), and the MEP puts in front of every one the
 * `uid=`/`pid=`/`uep=` of the UEP it launched on that channel, so whatever a
 * UEP (or a task of its user) sends is filed under that UEP and nowhere else.
 * A record is one line: `\r` and NUL are dropped, `\n` becomes a space, and
 * it is cut at {@link MAX_RECORD_CHARS}. Fail closed: a write that fails is
 * logged and reported once through `onFailure` (the MEP then stops); nothing
 * is written after it.
 */
import { closeSync, constants, fchmodSync, openSync, writeSync } from "node:fs";
import type { Readable } from "node:stream";
import type { Logger } from "../logging.js";

/** The longest record a UEP may send (as Globus, one page); longer ones are cut. */
export const MAX_RECORD_CHARS = 4096;

/** What the MEP knows of a UEP it launched: the prefix of each of its records. */
export interface AuditedUep {
  uid: number;
  pid: number;
  uepId: string;
}

export interface AuditLogOptions {
  path: string;
  endpointId: string;
  log: Logger;
  /** Called once, after the first failed write (already logged). */
  onFailure(message: string): void;
}

export class AuditLog {
  /** True once a write failed: nothing more is written. */
  failed = false;
  /** Channels still open: what they still hold is filed before the session ends. */
  private readonly channels = new Set<Promise<void>>();

  private constructor(
    private readonly fd: number,
    private readonly options: AuditLogOptions,
  ) {}

  /**
   * Opens `path` for appending, creating it with mode 0600 (as under umask 077)
   * when absent; an existing file is used as it is. Throws one sentence when it
   * cannot be opened.
   */
  static open(options: AuditLogOptions): AuditLog {
    const { path } = options;
    const append = constants.O_WRONLY | constants.O_APPEND;
    let fd: number;
    try {
      try {
        fd = openSync(path, append | constants.O_CREAT | constants.O_EXCL, 0o600);
        // Whatever the MEP's umask: a new audit log is its owner's alone.
        fchmodSync(fd, 0o600);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
        fd = openSync(path, append);
      }
    } catch (err) {
      throw new Error(
        `Cannot open the audit log ${path} (${(err as Error).message}); fix audit_log_path in config.yaml or the folder's permissions.`,
      );
    }
    return new AuditLog(fd, options);
  }

  /**
   * `Begin MEP session =====` or `End MEP session -----`, as the MEP (its uid
   * and pid, the endpoint id); the failure's sentence when the write failed.
   */
  session(event: "begin" | "end"): string | undefined {
    const text = event === "begin" ? "Begin MEP session =====" : "End MEP session -----";
    return this.write(`uid=${process.getuid?.() ?? -1} pid=${process.pid} eid=${this.options.endpointId}`, text);
  }

  /** Files one record a UEP sent, under that UEP's prefix. */
  uepRecord(uep: AuditedUep, record: string): void {
    this.write(`uid=${uep.uid} pid=${uep.pid} uep=${uep.uepId}`, cleanRecord(record));
  }

  /**
   * Reads the records `uep` sends on `channel`, one per line (each line a JSON
   * string, or taken as it is when it is not one), and files each.
   */
  follow(uep: AuditedUep, channel: Readable): void {
    let pending = "";
    /** True while the rest of an over-long line is skipped. */
    let skipping = false;
    channel.setEncoding("utf8");
    channel.on("data", (chunk: string) => {
      pending += chunk;
      for (let end = pending.indexOf("\n"); end >= 0; end = pending.indexOf("\n")) {
        const line = pending.slice(0, end);
        pending = pending.slice(end + 1);
        if (skipping) skipping = false;
        else this.uepRecord(uep, decodeLine(line));
      }
      if (pending.length > MAX_RECORD_CHARS) {
        if (!skipping) this.uepRecord(uep, decodeLine(pending));
        skipping = true;
        pending = "";
      }
    });
    // A UEP that exits closes its end; a read error ends the channel the same way.
    channel.on("error", () => {});
    const closed = new Promise<void>((resolve) => channel.once("close", () => resolve()));
    this.channels.add(closed);
    void closed.then(() => this.channels.delete(closed));
  }

  /**
   * Writes `End MEP session -----` once every UEP channel has closed (their
   * last records filed first), or after `waitMs`, and closes the file.
   */
  async end(waitMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, waitMs);
    });
    await Promise.race([Promise.all(this.channels), timeout]).finally(() => clearTimeout(timer));
    this.session("end");
    this.close();
  }

  close(): void {
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
  }

  private write(prefix: string, text: string): string | undefined {
    if (this.failed) return "The audit log failed earlier; nothing more is written to it.";
    try {
      writeSync(this.fd, `${auditTimestamp()} ${prefix} ${text}\n`);
      return undefined;
    } catch (err) {
      this.failed = true;
      const message = `Failed to write audit log message: [${prefix}] - ${(err as Error).message}; the endpoint stops (fail closed).`;
      this.options.log.error(message);
      this.options.onFailure(message);
      return message;
    }
  }
}

/** One line of a UEP's channel: a JSON string as the UEP writes them, else the raw text. */
function decodeLine(line: string): string {
  try {
    const value: unknown = JSON.parse(line);
    if (typeof value === "string") return value;
  } catch {
    // not JSON: filed as it came
  }
  return line;
}

/** A record as one line: no `\r` nor NUL, `\n` as a space, at most {@link MAX_RECORD_CHARS}. */
export function cleanRecord(record: string): string {
  return record
    .replace(/[\r\0]/g, "")
    .replace(/\n/g, " ")
    .slice(0, MAX_RECORD_CHARS);
}

/** Local time in ISO 8601 with microseconds and the offset: `2025-04-10T14:44:58.742079-05:00`. */
export function auditTimestamp(epochMs = performance.timeOrigin + performance.now()): string {
  const whole = Math.floor(epochMs);
  const date = new Date(whole);
  const micros = Math.min(999, Math.round((epochMs - whole) * 1000)) + (whole % 1000) * 1000;
  const two = (n: number) => String(n).padStart(2, "0");
  const offset = -date.getTimezoneOffset();
  const sign = offset < 0 ? "-" : "+";
  const abs = Math.abs(offset);
  return (
    `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())}` +
    `T${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}` +
    `.${String(micros).padStart(6, "0")}${sign}${two(Math.floor(abs / 60))}:${two(abs % 60)}`
  );
}
