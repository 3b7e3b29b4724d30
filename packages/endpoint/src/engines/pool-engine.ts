/**
 * What the ThreadPoolEngine and the ProcessPoolEngine share: a fixed pool of
 * workers inside the UEP, a FIFO queue, and bounded re-runs of tasks whose
 * worker died. The two differ only in how a worker is spawned.
 */
import { availableParallelism } from "node:os";
import { ConduitError, toWireError } from "@conduit/protocol/wire";
import type { EngineTask } from "../engine-task.js";
import { EngineError } from "../errors.js";
import { doc, type Fields, integerField } from "../option-fields.js";
import { type SpawnWorker, WorkerPool } from "../worker/worker-pool.js";
import { COMMON_ENGINE_FIELDS } from "./engine-options.js";
import type { Engine, EngineContext, EngineStatus } from "./engine-types.js";
import { shutdownError, TaskLedger } from "./task-ledger.js";

/** Workers get this long to exit on SIGTERM at shutdown before SIGKILL. */
const SHUTDOWN_GRACE_MS = 2000;

/**
 * A pool engine's option table: `max_workers` (`workers` says what they are,
 * e.g. "Worker threads."), the options both pool engines take, then its
 * per-worker `limits`.
 */
export function poolEngineFields<Limits extends Fields>(workers: string, limits: Limits) {
  return {
    max_workers: doc(workers, integerField({ min: 1, fallback: () => availableParallelism() }), "the number of CPUs"),
    max_retries_on_system_failure: doc(
      "Times a task runs again after its worker died under it.",
      integerField({ min: 0, fallback: 0 }),
    ),
    ...COMMON_ENGINE_FIELDS,
    ...limits,
  };
}

/** What the pool itself reads of a pool engine's options. */
export interface PoolEngineOptions {
  readonly max_workers: number;
  readonly max_retries_on_system_failure: number;
}

export abstract class PoolEngine<Options extends PoolEngineOptions = PoolEngineOptions> implements Engine {
  abstract readonly type: string;
  /** Handed no more tasks than it has workers: the others wait in the UEP, still cancellable. */
  readonly queuesTasks = false;
  private pool: WorkerPool | undefined;
  private ledger: TaskLedger | undefined;
  private context: EngineContext | undefined;
  private stopping: Promise<void> | undefined;

  constructor(readonly options: Options) {}

  /** How this engine starts one worker. */
  protected abstract spawner(context: EngineContext): SpawnWorker;

  async start(context: EngineContext): Promise<void> {
    this.context = context;
    const ledger = new TaskLedger(this.options.max_retries_on_system_failure, context.onResult);
    this.ledger = ledger;
    const pool = new WorkerPool({
      size: this.options.max_workers,
      spawn: this.spawner(context),
      log: context.log,
      onResult: (result) => ledger.complete(result),
      onLost: (task, reason) => {
        if (ledger.lost(task, reason)) pool.requeue(task);
      },
      onStartFailure: (tasks, reason) => {
        const error = toWireError(
          new EngineError(
            "WORKER_START_FAILED",
            `${reason}; check the user endpoint's log and that the endpoint package is built and installed.`,
          ),
        );
        for (const task of tasks) ledger.fail(task.taskId, error);
      },
    });
    this.pool = pool;
    try {
      await pool.start();
    } catch (err) {
      await pool.shutdown(0);
      throw new ConduitError("ENGINE_START_FAILED", `The ${this.type} could not start: ${(err as Error).message}`, {
        cause: err,
      });
    }
    context.log.info(`${this.type} started with ${this.options.max_workers} worker(s).`);
  }

  submit(task: EngineTask): void {
    const { pool, ledger, context } = this.started();
    if (this.stopping) {
      context.onResult({ taskId: task.taskId, ok: false, error: shutdownError(this.type)(task.taskId) });
      return;
    }
    if (!ledger.add(task)) {
      context.log.warn(`Task ${task.taskId} is already running on the ${this.type}; ignoring the duplicate.`);
      return;
    }
    pool.submit(task);
  }

  status(): EngineStatus {
    const pool = this.pool?.status();
    return {
      type: this.type,
      totalWorkers: pool?.totalWorkers ?? 0,
      idleWorkers: pool?.idleWorkers ?? 0,
      pendingTasks: pool?.queuedTasks ?? 0,
      outstandingTasks: this.ledger?.size ?? 0,
    };
  }

  /** Pids of the live workers (a thread pool's are all the UEP's own pid). */
  workerPids(): number[] {
    return this.pool?.pids() ?? [];
  }

  shutdown(): Promise<void> {
    this.stopping ??= this.stop();
    return this.stopping;
  }

  private async stop(): Promise<void> {
    if (!this.pool || !this.ledger) return;
    await this.pool.shutdown(SHUTDOWN_GRACE_MS);
    this.ledger.failAll(shutdownError(this.type));
    this.context?.log.info(`${this.type} shut down.`);
  }

  private started(): { pool: WorkerPool; ledger: TaskLedger; context: EngineContext } {
    if (!this.pool || !this.ledger || !this.context) {
      throw new ConduitError("ENGINE_NOT_STARTED", `The ${this.type} was given a task before start(); start it first.`);
    }
    return { pool: this.pool, ledger: this.ledger, context: this.context };
  }
}
