/**
 * Endpoint logs: `endpoint.log` in the endpoint (or UEP) directory, the same
 * line format for MEP and UEP, optionally echoed to the console
 * (`--log-to-console`), DEBUG lines only with `--debug` (or `debug: true`).
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
import { dirname } from "node:path";
import { formatWithOptions } from "node:util";
import { ConduitError } from "@conduit/protocol";

/** Where a component's log lines go (a file logger, a test's collector). */
export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
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
function rotate(file: string, fd: number, size: number, rotation: LogRotation): void {
  const { maxBytes, backups } = rotation;
  for (let i = backups - 1; i >= 1; i--) {
    try {
      renameSync(`${file}.${i}`, `${file}.${i + 1}`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
  if (backups > 0) copyTail(fd, size, maxBytes, `${file}.1`);
  ftruncateSync(fd, 0);
}

/** What a file may hold past the limit and still be copied whole: the line that crossed it. */
const LINE_SLACK = 64 * 1024;
/** Copied a piece at a time: a log of 100 MiB is never read into memory at once. */
const COPY_CHUNK = 1024 * 1024;

function copyTail(fd: number, size: number, maxBytes: number, to: string): void {
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
          `[${new Date().toISOString()}] WARNING ${process.pid} log rotation: ${dropped} bytes written since the last check were dropped (over ${maxBytes})\n`,
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

type Level = "DEBUG" | "INFO" | "WARNING" | "ERROR";

const COLORS: Record<Level, string> = { DEBUG: "\x1b[2m", INFO: "", WARNING: "\x1b[33m", ERROR: "\x1b[31m" };

export function createLogger(options: LoggerOptions): FileLogger {
  let fd: number | undefined;
  const { file } = options;
  const rotation = file ? (options.rotation ?? logRotationFromEnv()) : DEFAULT_LOG_ROTATION;
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
      if (size >= rotation.maxBytes) rotate(file, fd, size, rotation);
    } catch (err) {
      // A log that cannot rotate (disk full, a folder made read-only) must not stop the endpoint; said once.
      if (!rotateFailed) process.stderr.write(`Could not rotate ${file}: ${(err as Error).message}\n`);
      rotateFailed = true;
    }
  };
  if (fd !== undefined && options.checkEveryMs !== undefined) setInterval(checkSize, options.checkEveryMs).unref();
  const color = options.console === true && process.stderr.isTTY;
  const write = (level: Level, message: string): void => {
    if (level === "DEBUG" && !options.debug) return;
    const line = `[${new Date().toISOString()}] ${level} ${process.pid} ${options.name} ${message}\n`;
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
    debug: (m) => write("DEBUG", m),
    info: (m) => write("INFO", m),
    warn: (m) => write("WARNING", m),
    error: (m) => write("ERROR", m),
  };
}

/** util.format for log messages with objects. */
export function fmt(...args: unknown[]): string {
  return formatWithOptions({ depth: 4, breakLength: Number.POSITIVE_INFINITY }, ...args);
}
