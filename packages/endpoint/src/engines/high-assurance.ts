/**
 * Which engines a High-Assurance UEP may run. Tasks of an HA endpoint must not
 * cross the network in the clear: the thread and process pools never leave the
 * UEP's host, and a HighThroughputEngine qualifies only with `encrypted: true`
 * (TLS between its interchange and block managers).
 */
import type { EngineConfig } from "./engine-types.js";

/** Upstream's sentence (two spaces included), the UEP's start failure. */
export const HA_ENGINE_REFUSAL = "Engine configuration is not High Assurance compliant.  Endpoint will not start.";

const LOCAL_ENGINES: ReadonlySet<string> = new Set(["ThreadPoolEngine", "ProcessPoolEngine"]);
/** The HighThroughputEngine under both its names. */
const NETWORKED_ENGINES: ReadonlySet<string> = new Set(["HighThroughputEngine", "GlobusComputeEngine"]);

export function isHighAssuranceCompliant(engine: EngineConfig): boolean {
  if (LOCAL_ENGINES.has(engine.type)) return true;
  // `encrypted: true` is refused by the engine's option table until TLS lands, so today this is always false.
  if (NETWORKED_ENGINES.has(engine.type)) return engine.encrypted === true;
  return false;
}
