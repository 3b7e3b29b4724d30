/**
 * A fixed-size pool of workers (threads or processes) fed from one FIFO queue.
 * A task goes only to an idle worker, so a long task never holds up the ones
 * behind it. A worker that dies is replaced; the task it was running is
 * handed to `onLost`, and the pool's owner decides whether it runs again.
 *
 * The ThreadPoolEngine and ProcessPoolEngine (in the UEP) and the block
 * manager (in each block of a HighThroughputEngine) all run their workers
 * through this one class.
 */
import type { WireError } from "@conduit/protocol/task";
import type { EngineResult, EngineTask } from "../engine-task.js";
import type { Logger } from "../logging.js";
import { Fifo } from "./fifo.js";

/** One running worker, as the pool drives it. */
export interface PoolWorker {
  /** Names the worker in messages, e.g. `worker process 1234` or `worker thread 3 (pid 1234)`. */
  readonly label: string;
  readonly pid: number;
  send(task: EngineTask): void;
  kill(signal: NodeJS.Signals): void;
}

/** What a worker reports to its pool. */
export interface WorkerEvents {
  ready(): void;
  result(result: EngineResult): void;
  /**
   * `detail` is what is known about why, e.g. a thread's uncaught error;
   * `failure`, when set, is the error its task fails with instead of being
   * lost (e.g. WorkerOutOfMemory: running it again would only end the same way).
   */
  exit(code: number | null, signal: NodeJS.Signals | null, detail?: string, failure?: WireError): void;
}

/**
 * `rank`: the worker's place in the pool, 0 to size − 1; a worker that
 * replaces a dead one takes its rank (and so its accelerator, if any).
 */
export type SpawnWorker = (events: WorkerEvents, rank: number) => PoolWorker;

export interface WorkerPoolOptions {
  size: number;
  spawn: SpawnWorker;
  log: Logger;
  onResult(result: EngineResult): void;
  /** A worker died while running `task`; `reason` names the worker, how it died, and the task. */
  onLost(task: EngineTask, reason: string): void;
  /**
   * Workers keep dying before they are ready: the queued tasks are handed back
   * and the pool stops replacing workers until the next submit.
   */
  onStartFailure(tasks: EngineTask[], reason: string): void;
}

/** Workers that die before they are ready this many times in a row mean the pool cannot start. */
export const WORKER_START_ATTEMPTS = 3;

type SlotState = "starting" | "idle" | "busy";

interface Slot {
  worker: PoolWorker;
  rank: number;
  state: SlotState;
  task?: EngineTask;
  exited: Promise<void>;
}

export interface WorkerPoolStatus {
  totalWorkers: number;
  idleWorkers: number;
  queuedTasks: number;
  runningTasks: number;
}

export class WorkerPool {
  private readonly slots = new Set<Slot>();
  private readonly queue = new Fifo<EngineTask>();
  private startFailures = 0;
  private broken = false;
  private stopping = false;
  private respawnTimer: NodeJS.Timeout | undefined;
  private startWaiter: { resolve(): void; reject(err: Error): void } | undefined;

  constructor(private readonly options: WorkerPoolOptions) {}

  /** Starts the workers; resolves once every one of them is ready. */
  start(): Promise<void> {
    const ready = new Promise<void>((resolve, reject) => {
      this.startWaiter = { resolve, reject };
    });
    this.fill();
    return ready;
  }

  submit(task: EngineTask): void {
    this.queue.push(task);
    this.revive();
    this.dispatch();
  }

  /** Runs `task` again, ahead of the queue (it was submitted before the tasks waiting there). */
  requeue(task: EngineTask): void {
    this.queue.unshift(task);
    this.revive();
    this.dispatch();
  }

  status(): WorkerPoolStatus {
    let idle = 0;
    let busy = 0;
    for (const slot of this.slots) {
      if (slot.state === "idle") idle++;
      else if (slot.state === "busy") busy++;
    }
    return { totalWorkers: this.slots.size, idleWorkers: idle, queuedTasks: this.queue.length, runningTasks: busy };
  }

  /** Pids of the live workers. */
  pids(): number[] {
    return [...this.slots].map((slot) => slot.worker.pid);
  }

  /**
   * Stops every worker (SIGTERM, then SIGKILL after `graceMs`) and returns the
   * tasks that had not finished, queued and running, for the owner to fail.
   */
  async shutdown(graceMs: number): Promise<EngineTask[]> {
    this.stopping = true;
    clearTimeout(this.respawnTimer);
    const unfinished = this.queue.drain();
    for (const slot of this.slots) if (slot.task) unfinished.push(slot.task);
    const slots = [...this.slots];
    for (const slot of slots) slot.worker.kill("SIGTERM");
    const allExited = Promise.all(slots.map((slot) => slot.exited));
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), graceMs);
    });
    const outcome = await Promise.race([allExited, graceOver]);
    clearTimeout(timer);
    if (outcome === "timeout") {
      for (const slot of this.slots) slot.worker.kill("SIGKILL");
      await allExited;
    }
    this.startWaiter?.reject(new Error("The worker pool was shut down while it was starting."));
    this.startWaiter = undefined;
    return unfinished;
  }

  private revive(): void {
    if (!this.broken || this.stopping) return;
    // A new task gets a new chance: the cause (a full disk, a busy machine) may be gone.
    this.broken = false;
    this.startFailures = 0;
    this.fill();
  }

  private fill(): void {
    while (!this.stopping && !this.broken && this.slots.size < this.options.size) {
      try {
        this.spawnOne();
      } catch (err) {
        this.startFailed(`it could not be started (${err instanceof Error ? err.message : String(err)})`);
        return;
      }
    }
  }

  private spawnOne(): void {
    let markExited!: () => void;
    const exited = new Promise<void>((resolve) => {
      markExited = resolve;
    });
    const taken = new Set([...this.slots].map((s) => s.rank));
    let rank = 0;
    while (taken.has(rank)) rank++;
    const slot = { state: "starting", exited, rank } as Slot;
    slot.worker = this.options.spawn(
      {
        ready: () => this.onReady(slot),
        result: (result) => this.onWorkerResult(slot, result),
        exit: (code, signal, detail, failure) => {
          markExited();
          this.onExit(slot, code, signal, detail, failure);
        },
      },
      rank,
    );
    this.slots.add(slot);
  }

  private onReady(slot: Slot): void {
    if (slot.state !== "starting") return;
    slot.state = "idle";
    this.startFailures = 0;
    if (this.startWaiter && [...this.slots].every((s) => s.state !== "starting")) {
      this.startWaiter.resolve();
      this.startWaiter = undefined;
    }
    this.dispatch();
  }

  private onWorkerResult(slot: Slot, result: EngineResult): void {
    if (slot.task?.taskId !== result.taskId) {
      this.options.log.warn(`${slot.worker.label} sent a result for task ${result.taskId}, which it was not running.`);
      return;
    }
    slot.task = undefined;
    slot.state = "idle";
    // Hand the next task over before reporting, so the worker is not idle while the owner publishes.
    this.dispatch();
    this.options.onResult(result);
  }

  private onExit(
    slot: Slot,
    code: number | null,
    signal: NodeJS.Signals | null,
    detail?: string,
    failure?: WireError,
  ): void {
    if (!this.slots.delete(slot) || this.stopping) return;
    const how = `${slot.worker.label} ${signal ? `was killed by signal ${signal}` : `exited with code ${code}`}${detail ? ` (${detail})` : ""}`;
    if (slot.task && failure) {
      this.options.log.warn(`${how} while running task ${slot.task.taskId} (${failure.name}); starting a replacement.`);
      this.options.onResult({ taskId: slot.task.taskId, ok: false, error: failure });
    } else if (slot.task) {
      const task = slot.task;
      this.options.log.warn(`${how} while running task ${task.taskId}; starting a replacement.`);
      this.options.onLost(task, `${how} while running task ${task.taskId}`);
    } else if (slot.state === "starting") {
      this.startFailed(`${how} before it was ready`);
      return;
    } else {
      this.options.log.warn(`${how} while idle; starting a replacement.`);
    }
    this.fill();
    this.dispatch();
  }

  private startFailed(reason: string): void {
    this.startFailures++;
    this.options.log.warn(`A worker failed to start (${this.startFailures} in a row): ${reason}.`);
    if (this.startFailures < WORKER_START_ATTEMPTS) {
      // Back off a little, so a worker that cannot start does not spin the CPU.
      clearTimeout(this.respawnTimer);
      this.respawnTimer = setTimeout(() => this.fill(), 100 * this.startFailures);
      return;
    }
    this.broken = true;
    const message = `Workers fail to start (${WORKER_START_ATTEMPTS} in a row, the last one: ${reason})`;
    this.options.onStartFailure(this.queue.drain(), message);
    this.startWaiter?.reject(new Error(`${message}.`));
    this.startWaiter = undefined;
  }

  private dispatch(): void {
    if (this.queue.length === 0 || this.stopping) return;
    for (const slot of this.slots) {
      if (slot.state !== "idle") continue;
      const task = this.queue.shift();
      if (!task) return;
      slot.state = "busy";
      slot.task = task;
      slot.worker.send(task);
    }
  }
}
