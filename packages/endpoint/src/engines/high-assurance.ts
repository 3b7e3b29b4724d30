/**
 * Which engines a High-Assurance UEP may run. Tasks of an HA endpoint must not
 * cross the network in the clear: the thread and process pools never leave the
 * UEP's host, and a HighThroughputEngine qualifies unless it sets `encrypted: false`
 * (its default is TLS between the interchange and block managers).
 */
import type { EngineConfig } from "./engine-types.js";

/** Upstream's sentence (two spaces included), the UEP's start failure. */
export const HA_ENGINE_REFUSAL = "Engine configuration is not High Assurance compliant.  Endpoint will not start.";

const LOCAL_ENGINES: ReadonlySet<string> = new Set(["ThreadPoolEngine", "ProcessPoolEngine"]);
/** The HighThroughputEngine under both its names. */
const NETWORKED_ENGINES: ReadonlySet<string> = new Set(["HighThroughputEngine", "GlobusComputeEngine"]);

/** Why `engine` may not run on a High-Assurance endpoint (logged before the refusal, as upstream does), or undefined. */
export function highAssuranceProblem(engine: EngineConfig): string | undefined {
  if (LOCAL_ENGINES.has(engine.type)) return undefined;
  if (NETWORKED_ENGINES.has(engine.type)) {
    // TLS between the interchange and its block managers is the default (`encrypted: true`).
    if (engine.encrypted !== false) return undefined;
    return `High-Assurance ${engine.type}s must keep the \`encrypted\` configuration value true (TLS between the interchange and its blocks); remove \`encrypted: false\``;
  }
  return `${engine.type} is not known to be High-Assurance compliant; use a ThreadPoolEngine or ProcessPoolEngine`;
}

export function isHighAssuranceCompliant(engine: EngineConfig): boolean {
  return highAssuranceProblem(engine) === undefined;
}
