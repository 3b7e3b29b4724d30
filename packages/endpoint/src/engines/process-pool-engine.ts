/**
 * ProcessPoolEngine: tasks run in worker processes forked by the UEP, each
 * with its own memory and event loop, so a task that crashes or blocks its
 * process harms no other. Workers exit when their IPC channel to the UEP
 * closes, so none outlives it; the processes a task starts end with the task.
 * `max_memory_per_worker`, `max_open_files_per_worker` and `max_user_processes`
 * limit each worker (see worker/worker-limits.ts).
 */
import { type Options, parseOptions } from "../option-fields.js";
import { processWorkerSpawner } from "../worker/spawn-process-worker.js";
import { WorkerCgroups } from "../worker/worker-cgroups.js";
import { checkHardLimits } from "../worker/worker-limits.js";
import type { SpawnWorker } from "../worker/worker-pool.js";
import { WORKER_LIMIT_FIELDS } from "./engine-options.js";
import type { EngineContext } from "./engine-types.js";
import { PoolEngine, poolEngineFields } from "./pool-engine.js";

export const PROCESS_POOL_FIELDS = poolEngineFields("Worker processes.", WORKER_LIMIT_FIELDS);

export type ProcessPoolOptions = Options<typeof PROCESS_POOL_FIELDS>;

export class ProcessPoolEngine extends PoolEngine<ProcessPoolOptions> {
  readonly type = "ProcessPoolEngine";

  /** Checks the `engine:` options (without `type`) and builds the engine. */
  static parse(raw: Record<string, unknown>, path = "engine", source?: string): ProcessPoolEngine {
    return new ProcessPoolEngine(parseOptions(raw, path, "ProcessPoolEngine", PROCESS_POOL_FIELDS, source));
  }

  override async start(context: EngineContext): Promise<void> {
    // Before any worker starts: a limit no worker could set fails the UEP's start with one sentence.
    checkHardLimits(this.options, "engine");
    await super.start(context);
  }

  protected spawner(context: EngineContext): SpawnWorker {
    const heap = this.options.max_memory_per_worker;
    return processWorkerSpawner({
      env: context.env,
      limits: this.options,
      cgroups: heap ? WorkerCgroups.open(heap, context.log) : undefined,
    });
  }
}
