/**
 * `<endpoint dir>/last_failure.json`: why the endpoint's last `start` ended in
 * an error, written where that process exits and removed at the next start
 * that gets as far as taking commands. `list` shows the endpoint as Failed
 * with the cause; the whole sentence is in the file and in `endpoint.log`.
 */
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { EndpointPaths } from "./endpoint-dir.js";

export interface EndpointFailure {
  /** What `list` shows: `config invalid`, `registration refused (HTTP 403)`, `broker account removed`, … */
  cause: string;
  /** The one sentence the failing start printed. */
  message: string;
  exit_code: number;
  /** ISO 8601, UTC. */
  at: string;
}

const FILE_NAME = "last_failure.json";

function failureFile(ep: EndpointPaths): string {
  return join(ep.dir, FILE_NAME);
}

/** Written aside and renamed, so `list` never reads half a file. */
export function recordFailure(ep: EndpointPaths, failure: Omit<EndpointFailure, "at">): void {
  const record: EndpointFailure = { ...failure, at: new Date().toISOString() };
  const path = failureFile(ep);
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(record)}\n`, { mode: 0o600 });
  renameSync(temp, path);
}

export function clearFailure(ep: EndpointPaths): void {
  rmSync(failureFile(ep), { force: true });
}

/** The recorded failure, or undefined (none, or a file that is not one). */
export function readFailure(ep: EndpointPaths): EndpointFailure | undefined {
  let record: Partial<EndpointFailure>;
  try {
    record = JSON.parse(readFileSync(failureFile(ep), "utf8")) as Partial<EndpointFailure>;
  } catch {
    return undefined;
  }
  if (typeof record?.cause !== "string") return undefined;
  return {
    cause: record.cause,
    message: typeof record.message === "string" ? record.message : "",
    exit_code: typeof record.exit_code === "number" ? record.exit_code : 1,
    at: typeof record.at === "string" ? record.at : "",
  };
}
