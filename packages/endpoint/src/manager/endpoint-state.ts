/**
 * The states `conduit-endpoint list` shows, read from the endpoint directories
 * alone (it works with the service down), as the seed defines them.
 */
import { existsSync, readdirSync } from "node:fs";
import {
  type EndpointPaths,
  endpointPaths,
  readEndpointId,
  readPidFile,
  SERVICE_DIR_NAME,
  UEP_DIR_PREFIX,
} from "./endpoint-dir.js";
import { readFailure } from "./endpoint-failure.js";

/**
 * - `Initialized`: configured, never registered (no `endpoint.json`).
 * - `Running`: its MEP is alive (`daemon.pid` names a live MEP).
 * - `Stopped`: registered and stopped cleanly; it can be started again.
 * - `Disconnected`: its MEP died without cleaning up (`daemon.pid` names a dead
 *   process); the next `start` cleans up first, then runs.
 * - `Failed`: its last `start` exited on an error (`last_failure.json`: config
 *   invalid, registration refused, credentials refused, broker account
 *   removed, …); the next start that takes commands clears it.
 */
export type EndpointState = "Initialized" | "Running" | "Stopped" | "Disconnected" | "Failed";

export interface EndpointListing {
  name: string;
  /** Undefined until the first registration. */
  endpointId: string | undefined;
  state: EndpointState;
  /** Why it is Failed; undefined in every other state. */
  cause?: string;
}

/** Every folder of `userDir` that holds a `config.yaml`, sorted by name. */
export function listEndpoints(userDir: string): EndpointListing[] {
  let entries: string[];
  try {
    entries = readdirSync(userDir, { withFileTypes: true })
      .filter((e) => e.isDirectory() && e.name !== SERVICE_DIR_NAME && !e.name.startsWith(UEP_DIR_PREFIX))
      .map((e) => e.name);
  } catch {
    return [];
  }
  const out: EndpointListing[] = [];
  for (const name of entries.sort()) {
    const ep = endpointPaths(userDir, name);
    if (!existsSync(ep.config)) continue;
    let endpointId: string | undefined;
    try {
      endpointId = readEndpointId(ep);
    } catch {
      endpointId = undefined;
    }
    out.push({ name, endpointId, ...stateOf(ep, endpointId) });
  }
  return out;
}

function stateOf(ep: EndpointPaths, endpointId: string | undefined): Pick<EndpointListing, "state" | "cause"> {
  const pid = readPidFile(ep).state;
  if (pid === "running" && endpointId !== undefined) return { state: "Running" };
  // A failed start may never have registered (a refused registration, an invalid config).
  const failure = readFailure(ep);
  if (failure !== undefined) return { state: "Failed", cause: failure.cause };
  // As in Globus: without an id it never registered, whatever its pid file says.
  if (endpointId === undefined) return { state: "Initialized" };
  if (pid === "stale") return { state: "Disconnected" };
  return { state: "Stopped" };
}
