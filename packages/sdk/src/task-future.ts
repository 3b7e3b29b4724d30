/**
 * The handle `Executor.submit` returns: the task's id at once (the SDK chooses
 * it), and its outcome later. `await future` works as well as `future.result()`.
 */

/** Settles a future; held by the Executor only. */
export interface FutureSettlers<R> {
  resolve(value: R): void;
  reject(reason: unknown): void;
}

export class TaskFuture<R> implements PromiseLike<R> {
  /** The task's id, chosen by the SDK before the task is sent. */
  readonly taskId: string;
  private readonly outcome: Promise<R>;

  /** @internal Futures are made by `Executor.submit`. */
  constructor(taskId: string, outcome: Promise<R>) {
    this.taskId = taskId;
    this.outcome = outcome;
    // A future nobody awaits must not crash the process with an unhandled rejection;
    // whoever calls result() still sees the error.
    outcome.catch(() => {});
  }

  /** Resolves with the task's value, or rejects with what it raised (e.g. a TaskExecutionFailed). */
  result(): Promise<R> {
    return this.outcome;
  }

  // biome-ignore lint/suspicious/noThenProperty: a TaskFuture is meant to be awaited.
  then<T1 = R, T2 = never>(
    onFulfilled?: ((value: R) => T1 | PromiseLike<T1>) | null,
    onRejected?: ((reason: unknown) => T2 | PromiseLike<T2>) | null,
  ): Promise<T1 | T2> {
    return this.outcome.then(onFulfilled, onRejected);
  }
}

/** A future and the functions that settle it. */
export function createFuture<R>(taskId: string): { future: TaskFuture<R>; settlers: FutureSettlers<R> } {
  let settlers!: FutureSettlers<R>;
  const outcome = new Promise<R>((resolve, reject) => {
    settlers = { resolve, reject };
  });
  return { future: new TaskFuture(taskId, outcome), settlers };
}
