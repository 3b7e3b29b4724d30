/**
 * The engine interface: what a UEP needs from whatever runs its tasks
 * (worker threads, child processes, blocks of workers from a provider).
 * Implementations register in `engines/registry.ts` by `type`.
 */
import type { EngineResult, EngineTask } from "../engine-task.js";
import type { Logger } from "../logging.js";

export interface EngineContext {
  /** The UEP's directory; engines keep run files under it (e.g. `<runDir>/submit_scripts`). */
  runDir: string;
  log: Logger;
  /** Called once per task with its outcome. */
  onResult(result: EngineResult): void;
  /**
   * Called by an engine with `reportsStarts` when tasks leave its queue for a
   * worker or block (from then on they count as started and can no longer be
   * cancelled); may be called again for a task that is run again. An engine
   * with blocks says which one (and its provider's job) got them.
   */
  onStarted?(taskIds: string[], placement?: TaskPlacement): void;
  /** Environment for workers (the UEP's environment, user_environment.yaml applied). */
  env: NodeJS.ProcessEnv;
}

/** Where an engine with blocks sent tasks: the block, and its job once the provider has named it. */
export interface TaskPlacement {
  blockId: string;
  jobId?: string;
}

export interface EngineStatus {
  type: string;
  totalWorkers: number;
  idleWorkers: number;
  /** Submitted, not yet on a worker. */
  pendingTasks: number;
  /** Submitted and not yet finished (pending + running). */
  outstandingTasks: number;
  /** Tasks its blocks may hold beyond one per worker (a high-throughput engine's prefetch_capacity, summed over its blocks). */
  prefetchCapacity?: number;
  blocks?: number;
}

export interface Engine {
  readonly type: string;
  /**
   * True when the engine queues tasks itself and reports through
   * `context.onStarted` when each reaches a worker; otherwise a task counts as
   * started once submitted.
   */
  readonly reportsStarts?: boolean;
  /**
   * True when the engine keeps a queue of its own and is handed every task at
   * once (the high-throughput engine scales its blocks on the tasks it holds);
   * false when it gets no more tasks than it has workers, the others waiting
   * in the UEP, where a `cancel` can still drop them.
   */
  readonly queuesTasks: boolean;
  start(context: EngineContext): Promise<void>;
  /** Queues a task; its result arrives through `context.onResult`. */
  submit(task: EngineTask): void;
  status(): EngineStatus;
  /**
   * Drops this task if no worker or block has it yet. True if dropped, and
   * then no result will ever come for it; false if it started, finished or is
   * unknown (it then gets its result as usual).
   */
  cancel?(taskId: string): boolean;
  /** Stops workers and blocks; tasks still outstanding get a failed result. */
  shutdown(): Promise<void>;
}

/** The `engine:` block of a rendered user endpoint config; each engine validates its own keys. */
export interface EngineConfig {
  type: string;
  [key: string]: unknown;
}
