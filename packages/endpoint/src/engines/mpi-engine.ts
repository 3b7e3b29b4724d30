/**
 * MPIEngine (`GlobusMPIEngine` in Globus configs): a ProcessPoolEngine whose
 * workers run MPIFunction tasks behind the launcher `mpi_launcher` names
 * (mpiexec, srun or aprun). Each task's `resource_specification` is checked
 * when it arrives, so a missing, contradictory or unsatisfiable one fails the
 * task in one sentence before a worker takes it. The nodes are this host, or
 * `CONDUIT_MPI_NODES` (comma-separated) in the UEP's environment.
 */
import { SHELL_CODE, toWireError } from "@conduit/protocol";
import type { EngineTask } from "../engine-task.js";
import { choiceField, doc, type Options, parseOptions } from "../option-fields.js";
import { MPI_LAUNCHER_ENV, MPI_LAUNCHERS, mpiNodes, mpiResources } from "../worker/mpi-prefix.js";
import { processWorkerSpawner } from "../worker/spawn-process-worker.js";
import { WorkerCgroups } from "../worker/worker-cgroups.js";
import { checkHardLimits } from "../worker/worker-limits.js";
import type { SpawnWorker } from "../worker/worker-pool.js";
import { WORKER_LIMIT_FIELDS } from "./engine-options.js";
import type { EngineContext } from "./engine-types.js";
import { PoolEngine, poolEngineFields } from "./pool-engine.js";

export const MPI_ENGINE_FIELDS = {
  ...poolEngineFields("Worker processes: how many MPI tasks run at once.", WORKER_LIMIT_FIELDS),
  mpi_launcher: doc("The launcher an MPIFunction's command runs behind.", choiceField(MPI_LAUNCHERS, "mpiexec")),
};

export type MpiEngineOptions = Options<typeof MPI_ENGINE_FIELDS>;

export class MPIEngine extends PoolEngine<MpiEngineOptions> {
  readonly type = "MPIEngine";
  private onResult: EngineContext["onResult"] | undefined;
  private env: NodeJS.ProcessEnv = process.env;

  /** Checks the `engine:` options (without `type`) and builds the engine. */
  static parse(raw: Record<string, unknown>, path = "engine", source?: string): MPIEngine {
    return new MPIEngine(parseOptions(raw, path, "MPIEngine", MPI_ENGINE_FIELDS, source));
  }

  override async start(context: EngineContext): Promise<void> {
    checkHardLimits(this.options, "engine");
    this.onResult = context.onResult;
    this.env = context.env;
    await super.start(context);
  }

  override submit(task: EngineTask): void {
    // An MPIFunction's resources are checked before a worker takes it.
    if (this.onResult && isMpiTask(task)) {
      try {
        mpiResources(task.resourceSpecification, task.taskId, mpiNodes(this.env).length);
      } catch (err) {
        this.onResult({ taskId: task.taskId, ok: false, error: toWireError(err) });
        return;
      }
    }
    super.submit(task);
  }

  protected spawner(context: EngineContext): SpawnWorker {
    const heap = this.options.max_memory_per_worker;
    return processWorkerSpawner({
      env: { ...context.env, [MPI_LAUNCHER_ENV]: this.options.mpi_launcher },
      limits: this.options,
      cgroups: heap ? WorkerCgroups.open(heap, context.log) : undefined,
    });
  }
}

function isMpiTask(task: EngineTask): boolean {
  if (task.function.strategy !== SHELL_CODE) return false;
  try {
    return (JSON.parse(task.function.data) as { mpi?: unknown }).mpi === true;
  } catch {
    return false;
  }
}
