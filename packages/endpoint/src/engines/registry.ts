/**
 * Engines by config `type`. The table is the list: the error for an unknown
 * type names every entry, and adding an engine is one line here.
 *
 * ```ts
 * const engine = createEngine({ type: "ThreadPoolEngine", max_workers: 4 });
 * await engine.start({ runDir, log, env: process.env, onResult: (r) => publish(r) });
 * engine.submit(task);
 * ```
 */
import { ConfigError } from "../errors.js";
import type { Engine, EngineConfig } from "./engine-types.js";
import { HighThroughputEngine } from "./high-throughput-engine.js";
import { show } from "./option-fields.js";
import { ProcessPoolEngine } from "./process-pool-engine.js";
import { ThreadPoolEngine } from "./thread-pool-engine.js";

type EngineFactory = (options: Record<string, unknown>, path: string) => Engine;

const ENGINES: Record<string, EngineFactory> = {
  // Globus's name for the same engine, so that Globus configs (and the default template) load unchanged.
  GlobusComputeEngine: (options, path) => HighThroughputEngine.parse(options, path),
  HighThroughputEngine: (options, path) => HighThroughputEngine.parse(options, path),
  ProcessPoolEngine: (options, path) => ProcessPoolEngine.parse(options, path),
  ThreadPoolEngine: (options, path) => ThreadPoolEngine.parse(options, path),
};

export const ENGINE_TYPES: readonly string[] = Object.freeze(Object.keys(ENGINES).sort());

/**
 * Checks an `engine:` block (every option, once: a bad one throws a
 * ConfigError naming it) and builds the engine. Nothing runs until `start`.
 */
export function createEngine(config: EngineConfig, path = "engine"): Engine {
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new ConfigError(
      `${path} must be a mapping with a type, e.g. {type: ThreadPoolEngine} (got ${show(config)}).`,
    );
  }
  const { type, ...options } = config;
  const factory = typeof type === "string" && Object.hasOwn(ENGINES, type) ? ENGINES[type] : undefined;
  if (!factory) {
    if (type === undefined || type === null) {
      throw new ConfigError(`${path}.type is missing; set it to one of: ${ENGINE_TYPES.join(", ")}.`);
    }
    throw new ConfigError(
      `'${typeof type === "string" ? type : show(type)}' is not a valid engine type. Valid options are: ${ENGINE_TYPES.join(", ")}`,
    );
  }
  return factory(options, path);
}
