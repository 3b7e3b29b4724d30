/**
 * The Executor: `submit(fn, ...args)` returns a {@link TaskFuture} at once;
 * tasks are queued, registered (one function registration per payload), sent
 * in batches, and their results pushed back over AMQP from the task group's
 * queue: nothing polls.
 *
 * Order of a task's life here: snapshot of `userEndpointConfig` and
 * `resourceSpecification` at submit → queue → (next macrotask, or a full batch)
 * grouped by snapshot, split by `batchSize` and `maxRequestBytes` → POST submit
 * → the response names the result queue → a result message settles the future
 * (then the message is acked) → `result` and `progress` events.
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
  type SubmitRequest,
  type SubmitTask,
} from "@conduit/protocol";
import { BundledCode } from "./bundled-code.js";
import type { Client } from "./client.js";
import { CancelledError, type CancelReason } from "./errors.js";
import {
  type CompiledExecutorOptions,
  checkRecord,
  compileExecutorOptions,
  type ExecutorOptions,
} from "./executor-options.js";
import type { AnyFunction } from "./function-source.js";
import { ResultListener } from "./result-listener.js";
import { decodeOutcome, serializeArguments, serializeFunction } from "./serialize.js";
import { createFuture, type FutureSettlers, type TaskFuture } from "./task-future.js";
import { userRuntime } from "./user-runtime.js";

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

/** The user's per-submit values, frozen as JSON (a deep copy) at submit time. */
interface Snapshot {
  /** Canonical JSON of both values: equal keys go in the same requests. */
  key: string;
  userEndpointConfig: Record<string, unknown> | undefined;
  resourceSpecification: Record<string, unknown> | undefined;
}

/** A function to register (once per payload), or the id of a registered one. */
type FunctionRef = { code: ShippedCode } | { functionId: string };

interface ShippedCode {
  payload: Payload;
  name: string;
  /** Payloads with equal keys are one registration. */
  key: string;
  bytes: number;
}

interface QueuedTask {
  taskId: string;
  fn: FunctionRef;
  args: Payload;
  snapshot: Snapshot;
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

/** Submit requests in flight at once. */
const MAX_CONCURRENT_REQUESTS = 4;
/** Room kept in every request for the task group id, which may be learnt after the request was sized. */
const TASK_GROUP_ALLOWANCE = 128;

export class Executor extends EventEmitter<ExecutorEvents> implements AsyncDisposable {
  readonly endpointId: string;
  /** Template variables for the next submits; mutate it or replace it at will (see ExecutorOptions). */
  userEndpointConfig: Record<string, unknown>;
  /** Resources per task for the next submits (see ExecutorOptions). */
  resourceSpecification: Record<string, unknown> | undefined;
  readonly client: Client;

  private readonly options: CompiledExecutorOptions;
  private readonly runtime = userRuntime();
  private groupId: string | undefined;
  private queue: QueuedTask[] = [];
  private flushTimer: NodeJS.Immediate | undefined;
  /** Every unsettled future, from submit until its result (or failure). */
  private readonly pending = new Map<string, Tracked>();
  /** The send (registration and POST) each task in flight belongs to. */
  private readonly sendOf = new Map<string, Promise<void>>();
  /** Tasks this process asked the service to cancel: their `cancelled` result is ours. */
  private readonly cancelling = new Set<string>();
  private readonly counts = { submitted: 0, done: 0, failed: 0 };
  private idleWaiters: Array<() => void> = [];
  private readonly functions = new WeakMap<AnyFunction, ShippedCode>();
  private readonly functionIds = new Map<string, Promise<string>>();
  private lastSnapshot: Snapshot | undefined;
  private firstRequest: Promise<void> | undefined;
  private readonly requestSlots = new Semaphore(MAX_CONCURRENT_REQUESTS);
  private readonly sending = new Set<Promise<void>>();
  private readonly results: ResultListener;
  private backlog: Backlog | undefined;
  private closing: Promise<void> | undefined;

  constructor(options: ExecutorOptions) {
    super();
    this.options = compileExecutorOptions(options);
    this.endpointId = this.options.endpointId;
    this.client = this.options.client;
    this.groupId = this.options.taskGroupId;
    this.userEndpointConfig = options.userEndpointConfig ?? {};
    this.resourceSpecification = options.resourceSpecification;
    this.results = new ResultListener((results, queue) => this.onResults(results, queue), {
      amqpPort: this.options.amqpPort,
    });
  }

  /** The task group every result of this Executor belongs to; known after the first submit response. */
  get taskGroupId(): string | undefined {
    return this.groupId;
  }

  /**
   * Runs `fn(...args)` on the endpoint: a function (shipped as its source text)
   * or a {@link BundledCode}. Returns at once; problems with this task (a
   * function that cannot be shipped, arguments the serializer refuses, a task
   * over `maxTaskBytes`, a refused submit) reject the future, never this call.
   */
  submit<A extends unknown[], R>(fn: (...args: A) => R, ...args: A): TaskFuture<Awaited<R>>;
  submit<R = unknown>(code: BundledCode, ...args: unknown[]): TaskFuture<R>;
  submit(fn: AnyFunction | BundledCode, ...args: unknown[]): TaskFuture<unknown> {
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
   */
  registerFunction(fn: AnyFunction | BundledCode): Promise<string> {
    try {
      return this.functionId(this.shippedCode(fn));
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
    const groupId = this.groupId;
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
      this.cancelTimer();
      this.queue = [];
      for (const taskId of [...this.pending.keys()]) this.settle(taskId, new CancelledError(taskId, "shutdown"));
    } else {
      this.flush();
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
      this.queue.push({ taskId, fn, args: payload, snapshot: this.snapshot() });
    } catch (err) {
      this.settle(taskId, err);
      return future;
    }
    if (this.queue.length >= this.options.batchSize) this.flush();
    else this.flushTimer ??= setImmediate(() => this.flush());
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
    const queued = this.queue.findIndex((task) => task.taskId === taskId);
    if (queued >= 0) {
      this.queue.splice(queued, 1);
      this.settle(taskId, new CancelledError(taskId, "not-started"));
      return true;
    }
    // Being registered or sent: the service must know the task before it can cancel it.
    await this.sendOf.get(taskId);
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
    await Promise.all(this.sending);
    await this.results.close();
  }

  private shippedCode(fn: AnyFunction | BundledCode): ShippedCode {
    if (fn instanceof BundledCode) return shipped(fn.payload, fn.name);
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

  private cancelTimer(): void {
    if (this.flushTimer) clearImmediate(this.flushTimer);
    this.flushTimer = undefined;
  }

  private flush(): void {
    this.cancelTimer();
    if (this.queue.length === 0) return;
    const bySnapshot = new Map<string, QueuedTask[]>();
    for (const task of this.queue) {
      const group = bySnapshot.get(task.snapshot.key);
      if (group) group.push(task);
      else bySnapshot.set(task.snapshot.key, [task]);
    }
    this.queue = [];
    for (const tasks of bySnapshot.values()) {
      const sending = this.sendGroup(tasks);
      this.sending.add(sending);
      for (const task of tasks) this.sendOf.set(task.taskId, sending);
      void sending.finally(() => {
        this.sending.delete(sending);
        for (const task of tasks) this.sendOf.delete(task.taskId);
      });
    }
  }

  /** Sends tasks that share one snapshot; never rejects (failures reject the tasks' futures). */
  private async sendGroup(tasks: QueuedTask[]): Promise<void> {
    const ids = new Map<string, string | Error>();
    const codes = new Map<string, ShippedCode>();
    for (const { fn } of tasks) if ("code" in fn) codes.set(fn.code.key, fn.code);
    await Promise.all(
      [...codes].map(async ([key, code]) => {
        try {
          ids.set(key, await this.functionId(code));
        } catch (err) {
          ids.set(key, err as Error);
        }
      }),
    );
    const snapshot = tasks[0].snapshot;
    const { batchSize, maxRequestBytes } = this.options;
    const envelope = jsonBytes(this.requestBody([], snapshot)) + TASK_GROUP_ALLOWANCE;
    const posts: Promise<void>[] = [];
    let batch: SubmitTask[] = [];
    let bytes = envelope;
    for (const task of tasks) {
      const functionId = "code" in task.fn ? ids.get(task.fn.code.key) : task.fn.functionId;
      if (typeof functionId !== "string") {
        this.settle(task.taskId, functionId);
        continue;
      }
      const submitTask: SubmitTask = { task_id: task.taskId, function_id: functionId, args: task.args };
      const size = jsonBytes(submitTask) + 1;
      if (envelope + size > maxRequestBytes) {
        this.settle(
          task.taskId,
          new PayloadTooLargeError(`The submit request for task ${task.taskId}`, envelope + size, maxRequestBytes),
        );
        continue;
      }
      if (batch.length === batchSize || bytes + size > maxRequestBytes) {
        posts.push(this.post(batch, snapshot));
        batch = [];
        bytes = envelope;
      }
      batch.push(submitTask);
      bytes += size;
    }
    if (batch.length > 0) posts.push(this.post(batch, snapshot));
    await Promise.all(posts);
  }

  /** The function id for a payload; concurrent submits of one payload share one registration. */
  private functionId(code: ShippedCode): Promise<string> {
    let id = this.functionIds.get(code.key);
    if (!id) {
      const registering = this.client.registerFunction(code.payload, code.name ? { name: code.name } : {});
      this.functionIds.set(code.key, registering);
      // A failed registration is tried again by the next submit of the function.
      registering.catch(() => {
        if (this.functionIds.get(code.key) === registering) this.functionIds.delete(code.key);
      });
      id = registering;
    }
    return id;
  }

  private async post(tasks: SubmitTask[], snapshot: Snapshot): Promise<void> {
    const release = await this.requestSlots.acquire();
    let first = false;
    try {
      // The first request creates the task group; the others wait for its id so that
      // every result of this Executor arrives on one queue.
      while (this.groupId === undefined && this.firstRequest) await this.firstRequest;
      const call = this.client.submit(this.endpointId, this.requestBody(tasks, snapshot));
      if (this.groupId === undefined) {
        first = true;
        this.firstRequest = call.then(noop, noop);
      }
      const response = await call;
      this.groupId ??= response.task_group_id;
      // Cancelled meanwhile (shutdown with cancelFutures): nobody waits for these results.
      if (tasks.some((task) => this.pending.has(task.task_id))) {
        this.results.listen(response.amqp, response.result_queue).catch((err: unknown) => {
          for (const task of tasks) this.settle(task.task_id, err);
        });
      }
    } catch (err) {
      for (const task of tasks) this.settle(task.task_id, err);
    } finally {
      if (first) this.firstRequest = undefined;
      release();
    }
  }

  private requestBody(tasks: SubmitTask[], snapshot: Snapshot): SubmitRequest {
    const body: SubmitRequest = { tasks, user_runtime: this.runtime };
    if (this.groupId !== undefined) body.task_group_id = this.groupId;
    if (snapshot.userEndpointConfig) body.user_endpoint_config = snapshot.userEndpointConfig;
    if (snapshot.resourceSpecification) body.resource_specification = snapshot.resourceSpecification;
    return body;
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
    if (result.state === "cancelled") {
      const reason: CancelReason = this.cancelling.has(result.taskId) ? "not-started" : "remote";
      this.settle(result.taskId, new CancelledError(result.taskId, reason));
      return;
    }
    let value: unknown;
    try {
      value = decodeOutcome(result);
    } catch (err) {
      this.settle(result.taskId, err);
      return;
    }
    this.settle(result.taskId, undefined, value);
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

function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value), "utf8");
}

function noop(): void {}

/** At most `free` holders at once; the others wait in order. */
class Semaphore {
  private readonly waiting: Array<() => void> = [];

  constructor(private free: number) {}

  async acquire(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    return () => {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    };
  }
}
