/** Reading what a job wrote, for error messages about blocks that failed. */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { constants } from "node:os";
import type { JobStatus } from "./provider-types.js";

/** The end of a text file: at most `maxLines` lines and `maxBytes` bytes; "" if it cannot be read. */
export function readTail(path: string, maxLines = 20, maxBytes = 2048): string {
  let fd: number | undefined;
  try {
    fd = openSync(path, "r");
    const size = fstatSync(fd).size;
    const length = Math.min(size, maxBytes);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    let text = buffer.toString("utf8");
    // A cut in the middle of a line or a multi-byte character: drop the partial first line.
    if (length < size) text = text.slice(text.indexOf("\n") + 1);
    return text.trimEnd().split("\n").slice(-maxLines).join("\n");
  } catch {
    return "";
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** A cause of a block's end that gets its own task error (anything else is a lost worker). */
export type JobEndCause = "walltime" | "cancelled" | "out-of-memory";

/** The named cause of a job's end, if it has one. */
export function jobEndCause(status: JobStatus): JobEndCause | undefined {
  if (status.state === "timeout") return "walltime";
  if (status.outOfMemory) return "out-of-memory";
  if (status.state === "cancelled") return "cancelled";
  return undefined;
}

/**
 * How a job ended, by cause, for a message: "reached its walltime (00:10:00)",
 * "was killed by the scheduler for exceeding its memory …", "was cancelled
 * outside Conduit …", "was killed by signal SIGKILL", "exited with code 3".
 * (A job the engine cancels itself is never described.)
 */
export function describeJobEnd(status: JobStatus): string {
  if (status.state === "timeout") return `reached its walltime${status.walltime ? ` (${status.walltime})` : ""}`;
  if (status.outOfMemory) {
    return `was killed by the scheduler for exceeding its memory (${status.message ?? "out of memory"}); raise mem_per_node or lower max_workers_per_node`;
  }
  if (status.state === "cancelled")
    return "was cancelled outside Conduit (by its owner, an administrator or the scheduler)";
  if (status.signal) return `was killed by signal ${status.signal}`;
  if (status.exitCode !== undefined) return `exited with code ${status.exitCode}`;
  return `ended (${status.state}${status.message ? `: ${status.message}` : ""})`;
}

/**
 * What a job that ended before its block manager registered left behind:
 * its submit script and the tails of its stdout and stderr, as sentences
 * appended to an error message ("" for a job with no files).
 */
export function describeJobOutput(status: JobStatus | undefined): string {
  if (!status) return "";
  const parts: string[] = [];
  if (status.scriptPath) parts.push(` Its submit script: ${status.scriptPath}.`);
  for (const [name, path] of [
    ["stdout", status.stdoutPath],
    ["stderr", status.stderrPath],
  ] as const) {
    const tail = path ? readTail(path) : "";
    if (tail) parts.push(`\nLast lines of its ${name} (${path}):\n${tail}`);
  }
  return parts.join("");
}

/** `SIGTERM` for 15: schedulers report a signal by its number. */
export function signalName(signal: number): string {
  const name = Object.entries(constants.signals).find(([, number]) => number === signal)?.[0];
  return name ?? `signal ${signal}`;
}
