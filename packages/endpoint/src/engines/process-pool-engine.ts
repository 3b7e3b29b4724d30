/**
 * ProcessPoolEngine: tasks run in worker processes forked by the UEP, each
 * with its own memory and event loop, so a task that crashes or blocks its
 * process harms no other. Workers exit when their IPC channel to the UEP
 * closes, so none outlives it.
 */
import { availableParallelism } from "node:os";
import { processWorkerSpawner } from "../worker/spawn-process-worker.js";
import type { SpawnWorker } from "../worker/worker-pool.js";
import { WORKER_LIMIT_FIELDS } from "./engine-options.js";
import type { EngineContext } from "./engine-types.js";
import { doc, integerField, type Options, parseOptions } from "./option-fields.js";
import { POOL_ENGINE_FIELDS, PoolEngine } from "./pool-engine.js";

export const PROCESS_POOL_FIELDS = {
  max_workers: doc(
    "Worker processes.",
    integerField({ min: 1, fallback: () => availableParallelism() }),
    "the number of CPUs",
  ),
  ...POOL_ENGINE_FIELDS,
  ...WORKER_LIMIT_FIELDS,
};

export type ProcessPoolOptions = Options<typeof PROCESS_POOL_FIELDS>;

export class ProcessPoolEngine extends PoolEngine {
  readonly type = "ProcessPoolEngine";

  constructor(readonly options: ProcessPoolOptions) {
    super({ maxWorkers: options.max_workers, maxRetries: options.max_retries_on_system_failure });
  }

  /** Checks the `engine:` options (without `type`) and builds the engine. */
  static parse(raw: Record<string, unknown>, path = "engine", source?: string): ProcessPoolEngine {
    return new ProcessPoolEngine(parseOptions(raw, path, "ProcessPoolEngine", PROCESS_POOL_FIELDS, source));
  }

  protected spawner(context: EngineContext): SpawnWorker {
    return processWorkerSpawner({ env: context.env });
  }
}
