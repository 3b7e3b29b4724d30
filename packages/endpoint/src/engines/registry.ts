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
import type { JsonSchema } from "../option-fields.js";
import { type TypeEntry, TypeRegistry } from "../type-registry.js";
import type { Engine, EngineConfig } from "./engine-types.js";
import { HighThroughputEngine } from "./high-throughput-engine.js";
import { HIGH_THROUGHPUT_FIELDS } from "./high-throughput-options.js";
import { MPI_ENGINE_FIELDS, MPIEngine } from "./mpi-engine.js";
import { PROCESS_POOL_FIELDS, ProcessPoolEngine } from "./process-pool-engine.js";
import { THREAD_POOL_FIELDS, ThreadPoolEngine } from "./thread-pool-engine.js";

const HIGH_THROUGHPUT: TypeEntry<Engine> = {
  fields: HIGH_THROUGHPUT_FIELDS,
  create: (options, path, source) => HighThroughputEngine.parse(options, path, source),
};

const MPI: TypeEntry<Engine> = {
  fields: MPI_ENGINE_FIELDS,
  create: (options, path, source) => MPIEngine.parse(options, path, source),
};

const ENGINES = new TypeRegistry<Engine>("engine type", "ThreadPoolEngine", {
  GlobusMPIEngine: MPI,
  // Globus's name for the same engine, so that Globus configs (and the default template) load unchanged.
  GlobusComputeEngine: HIGH_THROUGHPUT,
  HighThroughputEngine: HIGH_THROUGHPUT,
  MPIEngine: MPI,
  ProcessPoolEngine: {
    fields: PROCESS_POOL_FIELDS,
    create: (options, path, source) => ProcessPoolEngine.parse(options, path, source),
  },
  ThreadPoolEngine: {
    fields: THREAD_POOL_FIELDS,
    create: (options, path, source) => ThreadPoolEngine.parse(options, path, source),
  },
});

export const ENGINE_TYPES: readonly string[] = ENGINES.types;

/**
 * Checks an `engine:` block (every option, once: a bad one throws a
 * ConfigError naming it, and `source`, the file, where it helps) and builds
 * the engine. Nothing runs until `start`.
 */
export function createEngine(config: EngineConfig, path = "engine", source?: string): Engine {
  return ENGINES.create(config, path, source);
}

/** The JSON Schema of an `engine:` block: one branch per engine (an alias shares its engine's). */
export function engineSchema(): JsonSchema {
  return ENGINES.schema();
}
