/**
 * Endpoint logs: `endpoint.log` in the endpoint (or UEP) directory, the same
 * line format for MEP and UEP, optionally echoed to the console
 * (`--log-to-console`), DEBUG lines only with `--debug` (or `debug: true`).
 *
 * Each line is one JSON object in the service's (pino's) shape, so one `jq`
 * filter reads the service's, the MEP's, the UEPs' and the workers' logs:
 * `{"level":30,"time":<ms since the epoch>,"pid":…,"hostname":…,"name":"MEP","msg":…}`
 * (levels 20 DEBUG, 30 INFO, 40 WARNING, 50 ERROR), plus the line's fields
 * (`task_id`, `reqId`, `uep`, `endpoint_id`, …; `reqId` is the service's name
 * for a request id, so one filter joins both). `CONDUIT_LOG_FORMAT=text`
 * writes the former human-readable lines instead:
 * `[<ISO time>] <LEVEL> <pid> <name> <message>`.
 *
 * What a UEP's workers and their tasks print goes to the same file as is;
 * only the logger's own lines are JSON.
 *
 * Logs rotate by size (100 MiB, 5 backups: `endpoint.log.1` … `.5`; set by
 * CONDUIT_LOG_MAX_BYTES and CONDUIT_LOG_BACKUPS). They rotate by copy and
 * truncate, not by rename: a UEP's log is also the stdout and stderr of the
 * UEP and of what it starts (opened with O_APPEND), and those descriptors
 * must go on writing into the file that is watched and rotated.
 */
import {
  appendFileSync,
  closeSync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  writeSync,
} from "node:fs";
import { hostname } from "node:os";
import { dirname } from "node:path";
import { formatWithOptions } from "node:util";
import { ConduitError } from "@conduit/protocol/task";

/** Fields of one log line beside its message: `task_id`, `reqId`, … (undefined ones are left out). */
export type LogFields = Readonly<Record<string, string | number | boolean | undefined>>;

/** Where a component's log lines go (a file logger, a test's collector). */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

/** `json` (the default): one JSON object a line; `text`: `[<time>] <LEVEL> <pid> <name> <message>`. */
export type LogFormat = "json" | "text";

/** CONDUIT_LOG_FORMAT (`json` or `text`), else `json`. */
export function logFormatFromEnv(env: NodeJS.ProcessEnv = process.env): LogFormat {
  const text = env.CONDUIT_LOG_FORMAT;
  if (text === undefined || text === "" || text === "json") return "json";
  if (text === "text") return "text";
  throw new ConduitError(
    "CONFIG_INVALID",
    `CONDUIT_LOG_FORMAT is ${JSON.stringify(text)}, neither json nor text; set it to one of them, or unset it for json.`,
  );
}

/** Set in a UEP's environment when it runs with `debug: true`: its workers and block managers log DEBUG lines too. */
export const LOG_DEBUG_ENV = "CONDUIT_LOG_DEBUG";

/** `env` with {@link LOG_DEBUG_ENV} set when `debug` is on (and left as it is otherwise). */
export function withLogDebug(env: NodeJS.ProcessEnv, debug: boolean): NodeJS.ProcessEnv {
  return debug ? { ...env, [LOG_DEBUG_ENV]: "1" } : env;
}

/** Whether this process (a worker, a block manager) was started by a UEP with `debug: true`. */
export function logDebugFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[LOG_DEBUG_ENV] === "1";
}

export type LogLevel = "DEBUG" | "INFO" | "WARNING" | "ERROR";

/** pino's numbers, as the service logs them. */
const PINO_LEVELS: Record<LogLevel, number> = { DEBUG: 20, INFO: 30, WARNING: 40, ERROR: 50 };

const HOSTNAME = hostname();

/** One log line (with its newline) in `format`. */
export function formatLogLine(
  format: LogFormat,
  level: LogLevel,
  name: string,
  message: string,
  fields: LogFields = {},
): string {
  if (format === "text") {
    const extra = Object.entries(fields)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => ` ${k}=${v}`)
      .join("");
    return `[${new Date().toISOString()}] ${level} ${process.pid} ${name} ${message}${extra}\n`;
  }
  return `${JSON.stringify({ level: PINO_LEVELS[level], time: Date.now(), pid: process.pid, hostname: HOSTNAME, name, msg: message, ...fields })}\n`;
}

export interface LoggerOptions {
  /** Log file; created with mode 0600 (and its folder 0700) if missing. */
  file?: string;
  /** Echo to stderr. */
  console?: boolean;
  /** Emit DEBUG lines. */
  debug?: boolean;
  /** Process label in each line, e.g. `MEP` or `UEP uep.<id>.<id>`. */
  name: string;
  /** Fields every line carries, e.g. `endpoint_id` and `uep`. */
  fields?: LogFields;
  /** @default logFormatFromEnv() */
  format?: LogFormat;
  /** @default logRotationFromEnv() */
  rotation?: LogRotation;
  /**
   * Also check the size on a timer this often, for what other processes write
   * to the file (a UEP's workers print to it); otherwise only at each line.
   */
  checkEveryMs?: number;
}

export interface FileLogger extends Logger {
  readonly file: string | undefined;
}

export interface LogRotation {
  /** The file is rotated once it holds this many bytes. @default 104857600 (100 MiB) */
  maxBytes: number;
  /** Rotated copies kept, `<file>.1` the newest; 0 keeps none (the file is just emptied). @default 5 */
  backups: number;
}

const DEFAULT_LOG_ROTATION: Readonly<LogRotation> = Object.freeze({ maxBytes: 100 * 1024 * 1024, backups: 5 });

/** The rotation set by CONDUIT_LOG_MAX_BYTES and CONDUIT_LOG_BACKUPS, else the defaults. */
function logRotationFromEnv(env: NodeJS.ProcessEnv = process.env): LogRotation {
  const read = (name: string, fallback: number, min: number): number => {
    const text = env[name];
    if (text === undefined || text === "") return fallback;
    const value = Number(text);
    if (!Number.isSafeInteger(value) || value < min) {
      throw new ConduitError(
        "CONFIG_INVALID",
        `${name} is ${JSON.stringify(text)}, not a whole number of at least ${min}; set it to e.g. ${fallback}, or unset it for the default.`,
      );
    }
    return value;
  };
  return {
    maxBytes: read("CONDUIT_LOG_MAX_BYTES", DEFAULT_LOG_ROTATION.maxBytes, 1024),
    backups: read("CONDUIT_LOG_BACKUPS", DEFAULT_LOG_ROTATION.backups, 0),
  };
}

/**
 * `file` → `file.1` → … → `file.<backups>` (the oldest dropped), then `file`
 * emptied in place. Lines other processes write between the copy and the
 * truncation are lost, as with logrotate's copytruncate. A file that grew
 * well past the limit between two checks (a task printing fast) keeps only
 * its last `maxBytes` in `file.1`, after a line saying how much was dropped,
 * so no copy is larger than the limit and a long line or two.
 */
function rotate(file: string, fd: number, size: number, rotation: LogRotation, format: LogFormat): void {
  const { maxBytes, backups } = rotation;
  for (let i = backups - 1; i >= 1; i--) {
    try {
      renameSync(`${file}.${i}`, `${file}.${i + 1}`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
  if (backups > 0) copyTail(fd, size, maxBytes, `${file}.1`, format);
  ftruncateSync(fd, 0);
}

/** What a file may hold past the limit and still be copied whole: the line that crossed it. */
const LINE_SLACK = 64 * 1024;
/** Copied a piece at a time: a log of 100 MiB is never read into memory at once. */
const COPY_CHUNK = 1024 * 1024;

function copyTail(fd: number, size: number, maxBytes: number, to: string, format: LogFormat): void {
  let position = size - maxBytes > LINE_SLACK ? size - maxBytes : 0;
  let cut = position > 0;
  const buffer = Buffer.alloc(Math.min(COPY_CHUNK, Math.max(1, size - position)));
  const out = openSync(to, "w", 0o600);
  try {
    while (position < size) {
      const read = readSync(fd, buffer, 0, Math.min(buffer.length, size - position), position);
      if (read === 0) break;
      let chunk = buffer.subarray(0, read);
      if (cut) {
        // Start at a line: the first, cut one goes with what was dropped.
        cut = false;
        const newline = chunk.indexOf(10);
        const dropped = position + newline + 1;
        writeSync(
          out,
          formatLogLine(
            format,
            "WARNING",
            "log rotation",
            `${dropped} bytes written since the last check were dropped (over ${maxBytes})`,
          ),
        );
        chunk = chunk.subarray(newline + 1);
      }
      writeSync(out, chunk);
      position += read;
    }
  } finally {
    closeSync(out);
  }
}

const COLORS: Record<LogLevel, string> = { DEBUG: "\x1b[2m", INFO: "", WARNING: "\x1b[33m", ERROR: "\x1b[31m" };

export function createLogger(options: LoggerOptions): FileLogger {
  let fd: number | undefined;
  const { file } = options;
  const rotation = file ? (options.rotation ?? logRotationFromEnv()) : DEFAULT_LOG_ROTATION;
  const format = options.format ?? logFormatFromEnv();
  if (file) {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    // Read too: a rotation copies the file's tail through this descriptor.
    fd = openSync(file, "a+", 0o600);
  }
  let rotateFailed = false;
  const checkSize = (): void => {
    if (fd === undefined || file === undefined) return;
    try {
      const { size } = fstatSync(fd);
      if (size >= rotation.maxBytes) rotate(file, fd, size, rotation, format);
    } catch (err) {
      // A log that cannot rotate (disk full, a folder made read-only) must not stop the endpoint; said once.
      if (!rotateFailed) process.stderr.write(`Could not rotate ${file}: ${(err as Error).message}\n`);
      rotateFailed = true;
    }
  };
  if (fd !== undefined && options.checkEveryMs !== undefined) setInterval(checkSize, options.checkEveryMs).unref();
  const color = options.console === true && process.stderr.isTTY;
  const write = (level: LogLevel, message: string, fields?: LogFields): void => {
    if (level === "DEBUG" && !options.debug) return;
    const line = formatLogLine(format, level, options.name, message, { ...options.fields, ...fields });
    // Synchronous on purpose: a crash right after a log line must not lose it.
    if (fd !== undefined) {
      appendFileSync(fd, line);
      checkSize();
    }
    if (options.console)
      process.stderr.write(color && COLORS[level] ? `${COLORS[level]}${line.trimEnd()}\x1b[0m\n` : line);
  };
  return {
    file: options.file,
    debug: (m, f) => write("DEBUG", m, f),
    info: (m, f) => write("INFO", m, f),
    warn: (m, f) => write("WARNING", m, f),
    error: (m, f) => write("ERROR", m, f),
  };
}

/** util.format for log messages with objects. */
export function fmt(...args: unknown[]): string {
  return formatWithOptions({ depth: 4, breakLength: Number.POSITIVE_INFINITY }, ...args);
}
