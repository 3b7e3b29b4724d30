/**
 * The tasks an engine holds: each gets exactly one result, whatever happens
 * to its worker, and a task whose worker dies runs again at most
 * `max_retries_on_system_failure` times. A task lost with its block fails
 * with the block's cause when the scheduler named one: BlockWalltime (the
 * job reached its walltime), BlockCancelled (cancelled outside Conduit),
 * WorkerOutOfMemory (the scheduler killed the job for its memory).
 *
 * A task cut by a block's walltime is no fault of its own nor of the node's:
 * it runs again once without using a retry, and a second walltime fails it
 * (BlockWalltime) whatever `max_retries_on_system_failure` says, since it
 * would most likely be cut again.
 */
import { toWireError, type WireError } from "@conduit/protocol/wire";
import type { EngineResult, EngineTask } from "../engine-task.js";
import { EngineError, WorkerLostError } from "../errors.js";
import type { JobEndCause } from "../providers/job-output.js";

export class TaskLedger {
  /** Outstanding task ids, with how many times each has lost its worker (retries used) and been cut by a walltime. */
  private readonly outstanding = new Map<string, { failures: number; walltimes: number }>();

  constructor(
    private readonly maxRetries: number,
    private readonly onResult: (result: EngineResult) => void,
  ) {}

  get size(): number {
    return this.outstanding.size;
  }

  /** Records a new task; false if a task with that id is already outstanding (it will get its one result). */
  add(task: EngineTask): boolean {
    if (this.outstanding.has(task.taskId)) return false;
    this.outstanding.set(task.taskId, { failures: 0, walltimes: 0 });
    return true;
  }

  /** Delivers a result, once; results of tasks no longer outstanding are dropped. */
  complete(result: EngineResult): void {
    if (this.outstanding.delete(result.taskId)) this.onResult(result);
  }

  /** Drops an outstanding task without a result (it was cancelled before it started); false if not outstanding. */
  forget(taskId: string): boolean {
    return this.outstanding.delete(taskId);
  }

  fail(taskId: string, error: WireError): void {
    this.complete({ taskId, ok: false, error });
  }

  /**
   * The task's worker (or block) died while running it; `cause` names why,
   * when the scheduler said (see LOST_CAUSE_ERRORS). Returns true when the
   * task should run again; otherwise it has been failed with the cause's
   * error (WORKER_LOST when there is none). A job killed for its memory is
   * never re-run: it would be killed again.
   */
  lost(task: EngineTask, reason: string, cause?: JobEndCause): boolean {
    const record = this.outstanding.get(task.taskId);
    if (record === undefined) return false;
    if (cause === "walltime") {
      record.walltimes++;
      if (record.walltimes === 1) return true;
      this.fail(
        task.taskId,
        toWireError(
          new EngineError(
            "BLOCK_WALLTIME",
            `${capitalize(reason)}; the task was cut by a block's walltime ${record.walltimes} times and is not re-run again (raise the provider's walltime, or split the task into shorter ones).`,
          ),
        ),
      );
      return false;
    }
    const failures = record.failures + 1;
    if (cause === "out-of-memory") {
      this.fail(
        task.taskId,
        toWireError(new EngineError("WORKER_OUT_OF_MEMORY", `${capitalize(reason)}; it was not re-run.`)),
      );
      return false;
    }
    if (failures <= this.maxRetries) {
      record.failures = failures;
      return true;
    }
    const advice =
      this.maxRetries === 0
        ? "it was not re-run (set max_retries_on_system_failure to re-run tasks whose worker dies)"
        : `it ran ${failures} times and max_retries_on_system_failure is ${this.maxRetries} (raise it to re-run such tasks more often)`;
    const message = `${capitalize(reason)}; ${advice}.`;
    const error = cause === "cancelled" ? new EngineError("BLOCK_CANCELLED", message) : new WorkerLostError(message);
    this.fail(task.taskId, toWireError(error));
    return false;
  }

  /** Fails every outstanding task with the error `errorFor` builds for it. */
  failAll(errorFor: (taskId: string) => WireError): void {
    for (const taskId of [...this.outstanding.keys()]) this.fail(taskId, errorFor(taskId));
  }
}

/** The error of a task that was outstanding when its engine shut down. */
export function shutdownError(engineType: string): (taskId: string) => WireError {
  return (taskId) =>
    toWireError(
      new EngineError(
        "ENGINE_SHUTDOWN",
        `Task ${taskId} did not finish because the ${engineType} shut down (its user endpoint stopped); submit it again.`,
      ),
    );
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
