/**
 * Engines by config `type`. The table is the list: the error for an unknown
 * type names every entry, the JSON Schema of an `engine:` block is made from
 * the entries' option tables, and adding an engine is one line here.
 *
 * ```ts
 * const engine = createEngine({ type: "ThreadPoolEngine", max_workers: 4 });
 * await engine.start({ runDir, log, env: process.env, onResult: (r) => publish(r) });
 * engine.submit(task);
 * ```
 */
import { ConfigError } from "../errors.js";
import { type Fields, type JsonSchema, show, typedBlockSchema } from "../option-fields.js";
import type { Engine, EngineConfig } from "./engine-types.js";
import { HighThroughputEngine } from "./high-throughput-engine.js";
import { HIGH_THROUGHPUT_FIELDS } from "./high-throughput-options.js";
import { PROCESS_POOL_FIELDS, ProcessPoolEngine } from "./process-pool-engine.js";
import { THREAD_POOL_FIELDS, ThreadPoolEngine } from "./thread-pool-engine.js";

interface EngineEntry {
  /** The engine's options (without `type`). */
  readonly fields: Fields;
  create(options: Record<string, unknown>, path: string, source?: string): Engine;
}

const HIGH_THROUGHPUT: EngineEntry = {
  fields: HIGH_THROUGHPUT_FIELDS,
  create: (options, path, source) => HighThroughputEngine.parse(options, path, source),
};

const ENGINES: Readonly<Record<string, EngineEntry>> = {
  // Globus's name for the same engine, so that Globus configs (and the default template) load unchanged.
  GlobusComputeEngine: HIGH_THROUGHPUT,
  HighThroughputEngine: HIGH_THROUGHPUT,
  ProcessPoolEngine: {
    fields: PROCESS_POOL_FIELDS,
    create: (options, path, source) => ProcessPoolEngine.parse(options, path, source),
  },
  ThreadPoolEngine: {
    fields: THREAD_POOL_FIELDS,
    create: (options, path, source) => ThreadPoolEngine.parse(options, path, source),
  },
};

export const ENGINE_TYPES: readonly string[] = Object.freeze(Object.keys(ENGINES).sort());

/**
 * Checks an `engine:` block (every option, once: a bad one throws a
 * ConfigError naming it, and `source`, the file, where it helps) and builds
 * the engine. Nothing runs until `start`.
 */
export function createEngine(config: EngineConfig, path = "engine", source?: string): Engine {
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new ConfigError(
      `${path} must be a mapping with a type, e.g. {type: ThreadPoolEngine} (got ${show(config)}).`,
    );
  }
  const { type, ...options } = config;
  const entry = typeof type === "string" && Object.hasOwn(ENGINES, type) ? ENGINES[type] : undefined;
  if (!entry) {
    if (type === undefined || type === null) {
      throw new ConfigError(`${path}.type is missing; set it to one of: ${ENGINE_TYPES.join(", ")}.`);
    }
    throw new ConfigError(
      `'${typeof type === "string" ? type : show(type)}' is not a valid engine type. Valid options are: ${ENGINE_TYPES.join(", ")}`,
    );
  }
  return entry.create(options, path, source);
}

/** The JSON Schema of an `engine:` block: one branch per engine (an alias shares its engine's). */
export function engineSchema(): JsonSchema {
  return typedBlockSchema(ENGINES);
}
