/**
 * The handle `Executor.submit` returns: the task's id at once (the SDK chooses
 * it), its outcome later, and `cancel()`. `await future` works as well as
 * `future.result()`.
 */

/** Settles a future; held by the Executor only. */
export interface FutureSettlers<R> {
  resolve(value: R): void;
  reject(reason: unknown): void;
}

/** Asks the Executor to cancel a task; resolves as {@link TaskFuture.cancel} does. */
export type Canceller = (taskId: string) => Promise<boolean>;

export class TaskFuture<R> implements PromiseLike<R> {
  /** The task's id, chosen by the SDK before the task is sent. */
  readonly taskId: string;
  private readonly outcome: Promise<R>;
  private readonly canceller: Canceller;

  /** @internal Futures are made by the Executor. */
  constructor(taskId: string, outcome: Promise<R>, canceller: Canceller) {
    this.taskId = taskId;
    this.outcome = outcome;
    this.canceller = canceller;
    // A future nobody awaits must not crash the process with an unhandled rejection;
    // whoever calls result() still sees the error.
    outcome.catch(() => {});
  }

  /** Resolves with the task's value, or rejects with what it raised (e.g. a TaskExecutionFailed). */
  result(): Promise<R> {
    return this.outcome;
  }

  /**
   * Cancels the task. `true`: it had not started, never runs, and this future
   * rejects with a CancelledError. `false`: it had started or finished; it
   * finishes on the endpoint, this future rejects with a CancelledError at once
   * (unless it had settled already) and the result is discarded when it comes.
   */
  cancel(): Promise<boolean> {
    return this.canceller(this.taskId);
  }

  // biome-ignore lint/suspicious/noThenProperty: a TaskFuture is meant to be awaited.
  then<T1 = R, T2 = never>(
    onFulfilled?: ((value: R) => T1 | PromiseLike<T1>) | null,
    onRejected?: ((reason: unknown) => T2 | PromiseLike<T2>) | null,
  ): Promise<T1 | T2> {
    return this.outcome.then(onFulfilled, onRejected);
  }

  catch<T = never>(onRejected?: ((reason: unknown) => T | PromiseLike<T>) | null): Promise<R | T> {
    return this.outcome.catch(onRejected);
  }

  finally(onFinally?: (() => void) | null): Promise<R> {
    return this.outcome.finally(onFinally);
  }
}

/** A future and the functions that settle it. */
export function createFuture<R>(
  taskId: string,
  canceller: Canceller,
): { future: TaskFuture<R>; settlers: FutureSettlers<R> } {
  let settlers!: FutureSettlers<R>;
  const outcome = new Promise<R>((resolve, reject) => {
    settlers = { resolve, reject };
  });
  return { future: new TaskFuture(taskId, outcome, canceller), settlers };
}
