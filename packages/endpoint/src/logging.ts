/**
 * Endpoint logs: `endpoint.log` in the endpoint (or UEP) directory, the same
 * line format for MEP and UEP, optionally echoed to the console
 * (`--log-to-console`), DEBUG lines only with `--debug` (or `debug: true`).
 */
import { appendFileSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import { formatWithOptions } from "node:util";

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
}

export interface FileLogger extends Logger {
  readonly file: string | undefined;
}

type Level = "DEBUG" | "INFO" | "WARNING" | "ERROR";

const COLORS: Record<Level, string> = { DEBUG: "\x1b[2m", INFO: "", WARNING: "\x1b[33m", ERROR: "\x1b[31m" };

export function createLogger(options: LoggerOptions): FileLogger {
  let fd: number | undefined;
  if (options.file) {
    mkdirSync(dirname(options.file), { recursive: true, mode: 0o700 });
    fd = openSync(options.file, "a", 0o600);
  }
  const color = options.console === true && process.stderr.isTTY;
  const write = (level: Level, message: string): void => {
    if (level === "DEBUG" && !options.debug) return;
    const line = `[${new Date().toISOString()}] ${level} ${process.pid} ${options.name} ${message}\n`;
    // Synchronous on purpose: a crash right after a log line must not lose it.
    if (fd !== undefined) appendFileSync(fd, line);
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
