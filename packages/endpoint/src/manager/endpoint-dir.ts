/**
 * An endpoint directory, `<CONDUIT_USER_DIR>/<name>/`: the admin's four files
 * (from `configure`), and what the MEP keeps there — `endpoint.json` (the id
 * from the first registration), `daemon.pid` (the running MEP), `ueps.json`
 * (its UEP process groups) and `endpoint.log`.
 */
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { ConduitError } from "@conduit/protocol/wire";
import { ENDPOINT_FILES } from "../config/defaults.js";
import { isOurProcess } from "./processes.js";

export interface EndpointPaths {
  name: string;
  dir: string;
  config: string;
  template: string;
  schema: string;
  environment: string;
  /** `{"endpoint_id": "<uuid>"}`, written after the first registration. */
  endpointJson: string;
  /** The MEP's pid while it runs. */
  pidFile: string;
  /** The MEP's UEP process groups (see uep-records.ts). */
  uepRecords: string;
  log: string;
}

export function endpointPaths(userDir: string, name: string): EndpointPaths {
  const dir = join(userDir, name);
  return {
    name,
    dir,
    config: join(dir, ENDPOINT_FILES.config),
    template: join(dir, ENDPOINT_FILES.template),
    schema: join(dir, ENDPOINT_FILES.schema),
    environment: join(dir, ENDPOINT_FILES.environment),
    endpointJson: join(dir, "endpoint.json"),
    pidFile: join(dir, "daemon.pid"),
    uepRecords: join(dir, "ueps.json"),
    log: join(dir, "endpoint.log"),
  };
}

/** The local service's data folder under the user dir; never an endpoint. */
export const SERVICE_DIR_NAME = "service";
/** Prefix of UEP directories (`uep.<endpoint id>.<uep id>`); never an endpoint. */
export const UEP_DIR_PREFIX = "uep.";

const NAME_RE = /^[A-Za-z0-9_.-]+$/;
const MAX_NAME_LENGTH = 128;

/** Throws a one-sentence ConduitError when `name` cannot be an endpoint's name. */
export function validateEndpointName(name: string): void {
  const bad = (why: string) => new ConduitError("BAD_ENDPOINT_NAME", why);
  if (name === "") throw bad("The endpoint name is empty; pass a name such as my_endpoint.");
  if (name === SERVICE_DIR_NAME) {
    throw bad(`"${SERVICE_DIR_NAME}" is the local service's data folder, not an endpoint name; choose another name.`);
  }
  if (name.startsWith(UEP_DIR_PREFIX)) {
    throw bad(
      `Endpoint names starting with "${UEP_DIR_PREFIX}" are reserved for user endpoint processes; choose another name.`,
    );
  }
  if (!NAME_RE.test(name)) {
    throw bad(
      `Endpoint name ${JSON.stringify(name)} may contain only letters, digits, "_", "." and "-" (no "/", spaces or other characters); choose a name such as my_endpoint.`,
    );
  }
  if (name.startsWith(".")) {
    throw bad(`Endpoint name ${JSON.stringify(name)} may not start with "."; choose a name such as my_endpoint.`);
  }
  if (name.length > MAX_NAME_LENGTH) {
    throw bad(
      `Endpoint name is ${name.length} characters long, over the limit of ${MAX_NAME_LENGTH}; choose a shorter name.`,
    );
  }
}

/** Paths of a configured endpoint; a ConduitError naming `configure` when there is none. */
export function configuredEndpoint(userDir: string, name: string): EndpointPaths {
  validateEndpointName(name);
  const ep = endpointPaths(userDir, name);
  if (!existsSync(ep.config)) {
    throw new ConduitError(
      "ENDPOINT_NOT_FOUND",
      `There is no endpoint named ${name} in ${userDir}; create it with: conduit-endpoint configure ${name}`,
    );
  }
  return ep;
}

/** The id kept from the first registration, or undefined before it. */
export function readEndpointId(ep: EndpointPaths): string | undefined {
  let text: string;
  try {
    text = readFileSync(ep.endpointJson, "utf8");
  } catch {
    return undefined;
  }
  try {
    const id = (JSON.parse(text) as { endpoint_id?: unknown } | null)?.endpoint_id;
    if (typeof id === "string" && id !== "") return id;
  } catch {
    // fall through to the error below
  }
  throw new ConduitError(
    "BAD_ENDPOINT_JSON",
    `${ep.endpointJson} does not hold {"endpoint_id": "<uuid>"}; fix it, or delete it to register this endpoint under a new id.`,
  );
}

export function writeEndpointId(ep: EndpointPaths, endpointId: string): void {
  writeFileSync(ep.endpointJson, `${JSON.stringify({ endpoint_id: endpointId })}\n`, { mode: 0o600 });
}

/**
 * What `daemon.pid` says: no file; a live MEP (`running`); or a file left by a
 * MEP that died without cleaning up (`stale`, the endpoint is Disconnected).
 */
export type PidFileStatus = { state: "absent" } | { state: "running"; pid: number } | { state: "stale"; pid?: number };

export function readPidFile(ep: EndpointPaths): PidFileStatus {
  let text: string;
  try {
    text = readFileSync(ep.pidFile, "utf8");
  } catch {
    return { state: "absent" };
  }
  const pid = Number.parseInt(text.trim(), 10);
  if (!Number.isInteger(pid) || pid <= 0) return { state: "stale" };
  if (pid !== process.pid && isMepProcess(pid, ep.name)) return { state: "running", pid };
  return { state: "stale", pid };
}

/** Whether `pid` is the MEP of endpoint `name`: a `conduit-endpoint start` or `restart` of it. */
export function isMepProcess(pid: number, name: string): boolean {
  return isOurProcess(pid, ["start", name]) || isOurProcess(pid, ["restart", name]);
}

/**
 * Writes our pid to `daemon.pid`, failing if the file exists: of two
 * `start`s racing, exactly one gets the endpoint.
 */
export function claimPidFile(ep: EndpointPaths): boolean {
  let fd: number;
  try {
    fd = openSync(ep.pidFile, "wx", 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
  try {
    writeSync(fd, `${process.pid}\n`);
  } finally {
    closeSync(fd);
  }
  return true;
}

/** Removes `daemon.pid` if it still names this process (a newer MEP may own it by now). */
export function releasePidFile(ep: EndpointPaths): void {
  try {
    if (Number.parseInt(readFileSync(ep.pidFile, "utf8").trim(), 10) !== process.pid) return;
  } catch {
    return;
  }
  rmSync(ep.pidFile, { force: true });
}

export function removePidFile(ep: EndpointPaths): void {
  rmSync(ep.pidFile, { force: true });
}
