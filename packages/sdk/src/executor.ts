/**
 * The Executor: `submit(fn, ...args)` returns a {@link TaskFuture} at once;
 * tasks are queued, registered (one function registration per payload), sent
 * in batches, and their results pushed back over AMQP from the task group's
 * queue: nothing polls. A High-Assurance endpoint's results are not pushed:
 * a notice is, and the result is then fetched over REST (one GET per task).
 *
 * Order of a task's life here: snapshot of `userEndpointConfig` and
 * `resourceSpecification` at submit → queue → (next macrotask, or a full batch)
 * grouped by snapshot, split by `batchSize` and `maxRequestBytes` → POST submit
 * → the response names the result queue → a result message settles the future
 * (then the message is acked) → `result` and `progress` events. Queueing,
 * grouping, splitting and posting are the {@link SubmitBatcher}'s.
 */
import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import {
  type CancelTaskResponse,
  ConduitError,
  canonicalJson,
  type Payload,
  PayloadTooLargeError,
  payloadBytes,
  type ResultMessage,
  type SubmitResponse,
} from "@conduit/protocol";
import { BundledCode } from "./bundled-code.js";
import type { Client, RegisterFunctionOptions } from "./client.js";
import { CancelledError, type CancelReason } from "./errors.js";
import {
  type CompiledExecutorOptions,
  checkRecord,
  compileExecutorOptions,
  type ExecutorOptions,
} from "./executor-options.js";
import type { AnyFunction } from "./function-source.js";
import { OnceOnStderr } from "./once-on-stderr.js";
import { ResultListener } from "./result-listener.js";
import { decodeOutcome, serializeArguments, serializeFunction } from "./serialize.js";
import { ShellFunction, type ShellResult } from "./shell-function.js";
import { type FunctionRef, type ShippedCode, type Snapshot, SubmitBatcher } from "./submit-batcher.js";
import { createFuture, type FutureSettlers, type TaskFuture } from "./task-future.js";

export interface ShutdownOptions {
  /** Resolve only once every future has settled and the broker link is closed. @default true */
  wait?: boolean;
  /**
   * Reject every unsettled future with a CancelledError and send nothing more.
   * Tasks already sent still run on the endpoint; their results can be fetched with `client.getResult`.
   * @default false
   */
  cancelFutures?: boolean;
}

/** A task's outcome, emitted once per task as `result`. */
export type ResultEvent = { taskId: string; ok: true; value: unknown } | { taskId: string; ok: false; error: unknown };

/** Counts over every task this Executor tracks (submitted, or re-attached by `reload()`), emitted as `progress`. */
export interface ProgressEvent {
  /** Tasks tracked so far. */
  submitted: number;
  /** Tasks settled, successfully or not. */
  done: number;
  /** Of `done`, those that failed or were cancelled. */
  failed: number;
  /** `submitted - done`. */
  pending: number;
}

export interface ExecutorEvents {
  result: [ResultEvent];
  progress: [ProgressEvent];
}

interface Tracked {
  future: TaskFuture<unknown>;
  settlers: FutureSettlers<unknown>;
}

/** Reading the results that waited in a group's queue when `reload()` started consuming it. */
interface Backlog {
  queue: string;
  seen: number;
  /** Messages waiting at the start; unknown until the consume started. */
  total: number;
  futures: TaskFuture<unknown>[];
  read: () => void;
}

export class Executor extends EventEmitter<ExecutorEvents> implements AsyncDisposable {
  readonly endpointId: string;
  /** Template variables for the next submits; mutate it or replace it at will (see ExecutorOptions). */
  userEndpointConfig: Record<string, unknown>;
  /** Resources per task for the next submits (see ExecutorOptions). */
  resourceSpecification: Record<string, unknown> | undefined;
  readonly client: Client;

  private readonly options: CompiledExecutorOptions;
  private readonly batcher: SubmitBatcher;
  /** Every unsettled future, from submit until its result (or failure). */
  private readonly pending = new Map<string, Tracked>();
  /** Tasks this process asked the service to cancel: their `cancelled` result is ours. */
  private readonly cancelling = new Set<string>();
  private readonly counts = { submitted: 0, done: 0, failed: 0 };
  private idleWaiters: Array<() => void> = [];
  private readonly functions = new WeakMap<AnyFunction, ShippedCode>();
  /** Registrations by payload key (and HA endpoint, for a High-Assurance function). */
  private readonly functionIds = new Map<string, Promise<string>>();
  /** The service's High-Assurance disclaimer, printed once by this Executor. */
  private readonly disclaimer = new OnceOnStderr();
  private lastSnapshot: Snapshot | undefined;
  private readonly results: ResultListener;
  private backlog: Backlog | undefined;
  private closing: Promise<void> | undefined;

  constructor(options: ExecutorOptions) {
    super();
    this.options = compileExecutorOptions(options);
    this.endpointId = this.options.endpointId;
    this.client = this.options.client;
    this.batcher = new SubmitBatcher(this.options, {
      functionId: (code) => this.functionId(code),
      accepted: (taskIds, response) => this.listenFor(taskIds, response),
      refused: (taskId, error) => this.settle(taskId, error),
    });
    this.userEndpointConfig = options.userEndpointConfig ?? {};
    this.resourceSpecification = options.resourceSpecification;
    this.results = new ResultListener((results, queue) => this.onResults(results, queue), {
      amqpPort: this.options.amqpPort,
    });
  }

  /** The task group every result of this Executor belongs to; known after the first submit response. */
  get taskGroupId(): string | undefined {
    return this.batcher.taskGroupId;
  }

  /**
   * Runs `fn(...args)` on the endpoint: a function (shipped as its source text),
   * a {@link BundledCode}, or a {@link ShellFunction} with the values of its
   * fields. Returns at once; problems with this task (a function that cannot
   * be shipped, arguments the serializer refuses, a task over `maxTaskBytes`,
   * a refused submit) reject the future, never this call.
   */
  submit<A extends unknown[], R>(fn: (...args: A) => R, ...args: A): TaskFuture<Awaited<R>>;
  submit<R = unknown>(code: BundledCode, ...args: unknown[]): TaskFuture<R>;
  submit(shell: ShellFunction, values?: Record<string, unknown>): TaskFuture<ShellResult>;
  submit(fn: AnyFunction | BundledCode | ShellFunction, ...args: unknown[]): TaskFuture<unknown> {
    return this.enqueue(() => ({ code: this.shippedCode(fn) }), args);
  }

  /** Runs the function registered as `functionId` (by `registerFunction` or `client.registerFunction`). */
  submitToRegisteredFunction<R = unknown>(functionId: string, ...args: unknown[]): TaskFuture<R> {
    return this.enqueue(() => {
      if (typeof functionId !== "string" || functionId === "") {
        throw new ConduitError(
          "BAD_ID",
          `Expected a function id, got ${JSON.stringify(functionId) ?? String(functionId)}; pass the id registerFunction resolved.`,
        );
      }
      return { functionId };
    }, args) as TaskFuture<R>;
  }

  /**
   * Submits `fn(item)` for every item at once, and yields the results in input
   * order. The iteration rejects with the error of the first task (in input
   * order) that failed, and stops there: the tasks after it are not cancelled,
   * and their outcomes still arrive as `result` events.
   */
  map<T, R>(fn: (item: T) => R, items: Iterable<T>): AsyncIterable<Awaited<R>> {
    const futures = Array.from(items, (item) => this.submit(fn, item));
    return (async function* () {
      for (const future of futures) yield await future;
    })();
  }

  /**
   * Registers a function (or a BundledCode) and resolves its id; one payload is
   * registered once per Executor, however often it is registered or submitted.
   * With `haEndpointId` it is a High-Assurance function of that HA endpoint (see
   * `Client.registerFunction`); submit it with {@link submitToRegisteredFunction}.
   */
  registerFunction(
    fn: AnyFunction | BundledCode | ShellFunction,
    options: Pick<RegisterFunctionOptions, "haEndpointId"> = {},
  ): Promise<string> {
    try {
      return this.functionId(this.shippedCode(fn), options.haEndpointId);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Re-attaches to this Executor's task group (the `taskGroupId` option) after
   * a restart of the submitting process. Resolves with a future per task still
   * pending in the group (settled as results come), and a settled future per
   * result that waited in the group's queue for a task not pending any more
   * (it finished while the process was away).
   */
  async reload(): Promise<TaskFuture<unknown>[]> {
    this.refuseIfClosing();
    const groupId = this.batcher.taskGroupId;
    if (groupId === undefined) {
      throw new ConduitError(
        "NO_TASK_GROUP",
        "reload() needs a task group to re-attach to; pass taskGroupId (executor.taskGroupId of the earlier run) to the Executor.",
      );
    }
    const detail = await this.client.getTaskGroup(groupId);
    const added: string[] = [];
    const futures = detail.pending_tasks.map(({ task_id }) => {
      const known = this.pending.get(task_id);
      if (known) return known.future;
      added.push(task_id);
      return this.track(task_id).future;
    });
    if (this.results.has(detail.result_queue)) return futures;
    let read!: () => void;
    const backlogRead = new Promise<void>((resolve) => {
      read = resolve;
    });
    // Set before consuming: the first messages may arrive before listen() resolves.
    const backlog: Backlog = { queue: detail.result_queue, seen: 0, total: Number.POSITIVE_INFINITY, futures, read };
    this.backlog = backlog;
    try {
      backlog.total = await this.results.listen(detail.amqp, detail.result_queue);
      if (backlog.seen >= backlog.total) read();
      await backlogRead;
    } catch (err) {
      // Nothing would ever settle these futures (and shutdown would wait for them).
      for (const taskId of added) this.settle(taskId, err);
      throw err;
    } finally {
      if (this.backlog === backlog) this.backlog = undefined;
    }
    return futures;
  }

  /** Sends what is queued, then (by default) waits for every future and closes the broker link. */
  async shutdown(options: ShutdownOptions = {}): Promise<void> {
    const { wait = true, cancelFutures = false } = options;
    if (cancelFutures) {
      this.batcher.discard();
      for (const taskId of [...this.pending.keys()]) this.settle(taskId, new CancelledError(taskId, "shutdown"));
    } else {
      this.batcher.flush();
    }
    this.closing ??= this.close();
    if (wait) await this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown();
  }

  private refuseIfClosing(): void {
    if (this.closing) {
      throw new ConduitError(
        "EXECUTOR_SHUT_DOWN",
        "This Executor is shut down; create a new Executor to submit more tasks.",
      );
    }
  }

  private enqueue(resolveFunction: () => FunctionRef, args: unknown[]): TaskFuture<unknown> {
    this.refuseIfClosing();
    const taskId = randomUUID();
    const { future } = this.track(taskId);
    try {
      const fn = resolveFunction();
      const payload = serializeArguments(args, this.options.serializer);
      const size = ("code" in fn ? fn.code.bytes : 0) + payloadBytes(payload);
      // Refused here, before anything is uploaded.
      if (size > this.options.maxTaskBytes) {
        throw new PayloadTooLargeError(`Task ${taskId} (function and arguments)`, size, this.options.maxTaskBytes);
      }
      this.batcher.add({ taskId, fn, args: payload, snapshot: this.snapshot() });
    } catch (err) {
      this.settle(taskId, err);
    }
    return future;
  }

  /** A new pending future for `taskId`. */
  private track(taskId: string): Tracked {
    const { future, settlers } = createFuture<unknown>(taskId, (id) => this.cancel(id));
    const tracked = { future, settlers };
    this.pending.set(taskId, tracked);
    this.counts.submitted++;
    this.emitProgress();
    return tracked;
  }

  private async cancel(taskId: string): Promise<boolean> {
    if (!this.pending.has(taskId)) return false;
    if (this.batcher.remove(taskId)) {
      this.settle(taskId, new CancelledError(taskId, "not-started"));
      return true;
    }
    // Being registered or sent: the service must know the task before it can cancel it.
    await this.batcher.inFlight(taskId);
    if (!this.pending.has(taskId)) return false;
    this.cancelling.add(taskId);
    let response: CancelTaskResponse;
    try {
      response = await this.client.cancelTask(taskId);
    } catch (err) {
      this.cancelling.delete(taskId);
      throw err;
    }
    this.settle(taskId, new CancelledError(taskId, response.cancelled ? "not-started" : "running"));
    return response.cancelled;
  }

  private async close(): Promise<void> {
    await this.idle();
    await this.batcher.drained();
    await this.results.close();
  }

  private shippedCode(fn: AnyFunction | BundledCode | ShellFunction): ShippedCode {
    if (fn instanceof BundledCode || fn instanceof ShellFunction) return shipped(fn.payload, fn.name);
    let code = this.functions.get(fn);
    if (!code) {
      code = shipped(serializeFunction(fn), typeof fn === "function" ? fn.name : "");
      this.functions.set(fn, code);
    }
    return code;
  }

  /** A deep copy of the per-submit values, shared by consecutive submits while they stay equal. */
  private snapshot(): Snapshot {
    checkRecord("userEndpointConfig", this.userEndpointConfig);
    checkRecord("resourceSpecification", this.resourceSpecification);
    let key: string;
    try {
      key = canonicalJson([this.userEndpointConfig ?? null, this.resourceSpecification ?? null]);
    } catch (err) {
      throw new ConduitError(
        "BAD_OPTION",
        `userEndpointConfig or resourceSpecification cannot be serialized as JSON (${(err as Error).message}); use plain data.`,
        { cause: err },
      );
    }
    if (this.lastSnapshot?.key !== key) {
      const [config, spec] = JSON.parse(key) as [Record<string, unknown> | null, Record<string, unknown> | null];
      this.lastSnapshot = {
        key,
        userEndpointConfig: config && Object.keys(config).length > 0 ? config : undefined,
        resourceSpecification: spec ?? undefined,
      };
    }
    return this.lastSnapshot;
  }

  /** The function id for a payload; concurrent submits of one payload share one registration. */
  private functionId(code: ShippedCode, haEndpointId?: string): Promise<string> {
    const key = haEndpointId === undefined ? code.key : `${haEndpointId.toLowerCase()}\n${code.key}`;
    let id = this.functionIds.get(key);
    if (!id) {
      const options: RegisterFunctionOptions = code.name ? { name: code.name } : {};
      if (haEndpointId !== undefined) options.haEndpointId = haEndpointId;
      const registering = this.client.registerFunctionReply(code.payload, options).then((reply) => {
        if (reply.disclaimer !== undefined) this.disclaimer.show(reply.disclaimer);
        return reply.function_id;
      });
      this.functionIds.set(key, registering);
      // A failed registration is tried again by the next submit of the function.
      registering.catch(() => {
        if (this.functionIds.get(key) === registering) this.functionIds.delete(key);
      });
      id = registering;
    }
    return id;
  }

  /** Consumes the result queue the service named for `taskIds`. */
  private listenFor(taskIds: string[], response: SubmitResponse): void {
    if (response.disclaimer !== undefined) this.disclaimer.show(response.disclaimer);
    // Cancelled meanwhile (shutdown with cancelFutures): nobody waits for these results.
    if (!taskIds.some((taskId) => this.pending.has(taskId))) return;
    this.results.listen(response.amqp, response.result_queue).catch((err: unknown) => {
      for (const taskId of taskIds) this.settle(taskId, err);
    });
  }

  /** One message's results (each delivered once), before the message is acked. */
  private onResults(results: ResultMessage[], queue: string): void {
    const backlog = this.backlog?.queue === queue && this.backlog.seen < this.backlog.total ? this.backlog : undefined;
    for (const result of results) {
      // A task that finished while the submitting process was away: a future settled at once.
      if (backlog && !this.pending.has(result.taskId)) backlog.futures.push(this.track(result.taskId).future);
      // Otherwise unknown or settled: a task of another Executor attached to the same group,
      // or one whose future was cancelled. Dropped (the listener acks it).
      if (this.pending.has(result.taskId)) this.settleFrom(result);
    }
    if (backlog && ++backlog.seen >= backlog.total) backlog.read();
  }

  private settleFrom(result: ResultMessage): void {
    if (result.highAssurance) {
      this.fetchOutcome(result.taskId);
      return;
    }
    if (result.state === "cancelled") {
      const reason: CancelReason = this.cancelling.has(result.taskId) ? "not-started" : "remote";
      this.settle(result.taskId, new CancelledError(result.taskId, reason));
      return;
    }
    this.settleWith(result);
  }

  /** Settles the task's future with what its outcome holds: its value, or what the task raised. */
  private settleWith(outcome: Parameters<typeof decodeOutcome>[0]): void {
    let value: unknown;
    try {
      value = decodeOutcome(outcome);
    } catch (err) {
      this.settle(outcome.taskId, err);
      return;
    }
    this.settle(outcome.taskId, undefined, value);
  }

  /**
   * A High-Assurance endpoint's result is never pushed, only a notice that it
   * is stored: it is fetched over REST, where the service checks the
   * endpoint's policy at this moment. The notice is acked meanwhile; the result
   * stays in the service (`client.getResult`) should this process stop first.
   */
  private fetchOutcome(taskId: string): void {
    this.client.getTask(taskId).then(
      (task) => this.settleWith({ taskId, state: task.state, result: task.result, error: task.error }),
      (err: unknown) => this.settle(taskId, err),
    );
  }

  /** Settles a pending future: rejects with `error` when it is given, else resolves with `value`. */
  private settle(taskId: string, error: unknown, value?: unknown): void {
    const tracked = this.pending.get(taskId);
    if (!tracked) return;
    this.pending.delete(taskId);
    this.cancelling.delete(taskId);
    this.counts.done++;
    if (error !== undefined) {
      this.counts.failed++;
      tracked.settlers.reject(error);
      this.emitSafely("result", { taskId, ok: false, error });
    } else {
      tracked.settlers.resolve(value);
      this.emitSafely("result", { taskId, ok: true, value });
    }
    this.emitProgress();
    if (this.pending.size === 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  private emitProgress(): void {
    if (this.listenerCount("progress") === 0) return;
    const { submitted, done, failed } = this.counts;
    this.emitSafely("progress", { submitted, done, failed, pending: submitted - done });
  }

  /**
   * A listener that throws must not break the result stream (the message would stay
   * unacked): its error is rethrown on its own, as an uncaught exception.
   */
  private emitSafely<K extends keyof ExecutorEvents>(event: K, ...args: ExecutorEvents[K]): void {
    try {
      (this.emit as (event: K, ...args: ExecutorEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      process.nextTick(() => {
        throw err;
      });
    }
  }

  private idle(): Promise<void> {
    if (this.pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}

function shipped(payload: Payload, name: string): ShippedCode {
  return { payload, name, key: `${payload.strategy}\n${payload.data}`, bytes: payloadBytes(payload) };
}
