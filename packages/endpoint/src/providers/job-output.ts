/** Reading what a job wrote, for error messages about blocks that failed. */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
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

/** How a job ended, for a message: "was killed by signal SIGKILL", "exited with code 3". */
export function describeJobEnd(status: JobStatus): string {
  if (status.signal) return `was killed by signal ${status.signal}`;
  if (status.exitCode !== undefined) return `exited with code ${status.exitCode}`;
  return `ended (${status.state}${status.message ? `: ${status.message}` : ""})`;
}
