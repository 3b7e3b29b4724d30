/**
 * MPIEngine (`GlobusMPIEngine` in Globus configs): a ProcessPoolEngine whose
 * workers run MPIFunction tasks behind the launcher `mpi_launcher` names
 * (mpiexec, srun or aprun). Each task's `resource_specification` is checked
 * when it arrives, so a missing, contradictory or unsatisfiable one fails the
 * task in one sentence before a worker takes it. Each MPI task is then
 * handed its `num_nodes` distinct nodes from the engine's (see mpi-nodes.ts)
 * and waits in the engine until that many are free, so concurrent MPI tasks
 * never share a node; its worker runs it on those nodes only.
 */
import { SHELL_CODE, toWireError } from "@conduit/protocol/wire";
import type { EngineTask } from "../engine-task.js";
import { choiceField, doc, type Options, parseOptions } from "../option-fields.js";
import { MPI_LAUNCHER_ENV, MPI_LAUNCHERS, mpiResources } from "../worker/mpi-prefix.js";
import { processWorkerSpawner } from "../worker/spawn-process-worker.js";
import { WorkerCgroups } from "../worker/worker-cgroups.js";
import { checkHardLimits } from "../worker/worker-limits.js";
import type { SpawnWorker } from "../worker/worker-pool.js";
import { WORKER_LIMIT_FIELDS } from "./engine-options.js";
import type { EngineContext, EngineStatus } from "./engine-types.js";
import { engineMpiNodes, MpiNodePool } from "./mpi-nodes.js";
import { PoolEngine, poolEngineFields } from "./pool-engine.js";
import { shutdownError } from "./task-ledger.js";

export const MPI_ENGINE_FIELDS = {
  ...poolEngineFields("Worker processes: how many MPI tasks run at once.", WORKER_LIMIT_FIELDS),
  mpi_launcher: doc("The launcher an MPIFunction's command runs behind.", choiceField(MPI_LAUNCHERS, "mpiexec")),
};

export type MpiEngineOptions = Options<typeof MPI_ENGINE_FIELDS>;

export class MPIEngine extends PoolEngine<MpiEngineOptions> {
  readonly type = "MPIEngine";
  private onResult: EngineContext["onResult"] | undefined;
  private nodes: MpiNodePool | undefined;
  private closing = false;

  /** Checks the `engine:` options (without `type`) and builds the engine. */
  static parse(raw: Record<string, unknown>, path = "engine", source?: string): MPIEngine {
    return new MPIEngine(parseOptions(raw, path, "MPIEngine", MPI_ENGINE_FIELDS, source));
  }

  override async start(context: EngineContext): Promise<void> {
    checkHardLimits(this.options, "engine");
    const nodes = new MpiNodePool(await engineMpiNodes(context.env));
    this.nodes = nodes;
    // A task's nodes are free again once its outcome is known (a re-run after a lost worker keeps them).
    this.onResult = (result) => {
      nodes.release(result.taskId);
      context.onResult(result);
    };
    await super.start({ ...context, onResult: this.onResult });
    context.log.info(`${this.type} hands out ${nodes.nodes.length} node(s): ${nodes.nodes.join(", ")}.`);
  }

  override submit(task: EngineTask): void {
    const { onResult, nodes } = this;
    if (!onResult || !nodes || this.closing || !isMpiTask(task)) {
      super.submit(task);
      return;
    }
    if (nodes.has(task.taskId)) return; // a duplicate of a task it holds
    // An MPIFunction's resources are checked before it waits for nodes.
    let numNodes: number;
    try {
      numNodes = mpiResources(task.resourceSpecification, task.taskId, nodes.nodes.length).numNodes;
    } catch (err) {
      onResult({ taskId: task.taskId, ok: false, error: toWireError(err) });
      return;
    }
    nodes.acquire(task.taskId, numNodes, (granted) => super.submit({ ...task, mpiNodes: granted }));
  }

  override status(): EngineStatus {
    const status = super.status();
    const waiting = this.nodes?.waitingTasks ?? 0;
    return {
      ...status,
      pendingTasks: status.pendingTasks + waiting,
      outstandingTasks: status.outstandingTasks + waiting,
    };
  }

  override shutdown(): Promise<void> {
    if (!this.closing) {
      this.closing = true;
      const failed = shutdownError(this.type);
      for (const taskId of this.nodes?.drain() ?? []) this.onResult?.({ taskId, ok: false, error: failed(taskId) });
    }
    return super.shutdown();
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
