/**
 * The Executor: `submit(fn, ...args)` returns a {@link TaskFuture} at once;
 * tasks are queued, registered (one function registration per source text),
 * sent in batches, and their results pushed back over AMQP from the task
 * group's queue: nothing polls.
 *
 * Order of a task's life here: snapshot of `userEndpointConfig` and
 * `resourceSpecification` at submit → queue → (next macrotask, or a full batch)
 * grouped by snapshot, split by `batchSize` and `maxRequestBytes` → POST submit
 * → the response names the result queue → a result message settles the future.
 */
import { randomUUID } from "node:crypto";
import {
  ConduitError,
  canonicalJson,
  type Payload,
  PayloadTooLargeError,
  payloadBytes,
  type ResultMessage,
  SOURCE_CODE,
  type SubmitRequest,
  type SubmitTask,
} from "@conduit/protocol";
import type { Client } from "./client.js";
import { FutureCancelledError } from "./errors.js";
import {
  type CompiledExecutorOptions,
  checkRecord,
  compileExecutorOptions,
  type ExecutorOptions,
} from "./executor-options.js";
import { ResultListener } from "./result-listener.js";
import { type AnyFunction, decodeOutcome, functionSource, serializeArguments } from "./serialize.js";
import { createFuture, type FutureSettlers, type TaskFuture } from "./task-future.js";
import { userRuntime } from "./user-runtime.js";

export interface ShutdownOptions {
  /** Resolve only once every future has settled and the broker link is closed. @default true */
  wait?: boolean;
  /**
   * Reject every unsettled future with a FutureCancelledError and send nothing more.
   * Tasks already sent still run on the endpoint; their results can be fetched with `client.getResult`.
   * @default false
   */
  cancelFutures?: boolean;
}

/** The user's per-submit values, frozen as JSON (a deep copy) at submit time. */
interface Snapshot {
  /** Canonical JSON of both values: equal keys go in the same requests. */
  key: string;
  userEndpointConfig: Record<string, unknown> | undefined;
  resourceSpecification: Record<string, unknown> | undefined;
}

interface QueuedTask {
  taskId: string;
  source: string;
  name: string;
  args: Payload;
  snapshot: Snapshot;
}

interface FunctionText {
  source: string;
  bytes: number;
}

/** Submit requests in flight at once. */
const MAX_CONCURRENT_REQUESTS = 4;
/** Room kept in every request for the task group id, which may be learnt after the request was sized. */
const TASK_GROUP_ALLOWANCE = 128;

export class Executor implements AsyncDisposable {
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
  private readonly pending = new Map<string, FutureSettlers<unknown>>();
  private idleWaiters: Array<() => void> = [];
  private readonly sources = new WeakMap<AnyFunction, FunctionText>();
  private readonly functionIds = new Map<string, Promise<string>>();
  private lastSnapshot: Snapshot | undefined;
  private firstRequest: Promise<void> | undefined;
  private readonly requestSlots = new Semaphore(MAX_CONCURRENT_REQUESTS);
  private readonly sending = new Set<Promise<void>>();
  private readonly results = new ResultListener((result) => this.onResult(result));
  private closing: Promise<void> | undefined;

  constructor(options: ExecutorOptions) {
    this.options = compileExecutorOptions(options);
    this.endpointId = this.options.endpointId;
    this.client = this.options.client;
    this.groupId = this.options.taskGroupId;
    this.userEndpointConfig = options.userEndpointConfig ?? {};
    this.resourceSpecification = options.resourceSpecification;
  }

  /** The task group every result of this Executor belongs to; known after the first submit response. */
  get taskGroupId(): string | undefined {
    return this.groupId;
  }

  /**
   * Runs `fn(...args)` on the endpoint. Returns at once; problems with this task
   * (a function that cannot be shipped, arguments that are not JSON, a task over
   * `maxTaskBytes`, a refused submit) reject the future, never this call.
   */
  submit<A extends unknown[], R>(fn: (...args: A) => R, ...args: A): TaskFuture<Awaited<R>> {
    if (this.closing) {
      throw new ConduitError(
        "EXECUTOR_SHUT_DOWN",
        "This Executor is shut down; create a new Executor to submit more tasks.",
      );
    }
    const taskId = randomUUID();
    const { future, settlers } = createFuture<Awaited<R>>(taskId);
    try {
      const { source, bytes } = this.sourceOf(fn);
      const payload = serializeArguments(args);
      const size = bytes + payloadBytes(payload);
      // Refused here, before anything is uploaded.
      if (size > this.options.maxTaskBytes) {
        throw new PayloadTooLargeError(`Task ${taskId} (function and arguments)`, size, this.options.maxTaskBytes);
      }
      this.queue.push({ taskId, source, name: fn.name, args: payload, snapshot: this.snapshot() });
    } catch (err) {
      settlers.reject(err);
      return future;
    }
    this.pending.set(taskId, settlers as FutureSettlers<unknown>);
    if (this.queue.length >= this.options.batchSize) this.flush();
    else this.flushTimer ??= setImmediate(() => this.flush());
    return future;
  }

  /** Sends what is queued, then (by default) waits for every future and closes the broker link. */
  async shutdown(options: ShutdownOptions = {}): Promise<void> {
    const { wait = true, cancelFutures = false } = options;
    if (cancelFutures) {
      this.cancelTimer();
      this.queue = [];
      for (const taskId of [...this.pending.keys()]) this.settle(taskId, new FutureCancelledError(taskId));
    } else {
      this.flush();
    }
    this.closing ??= this.close();
    if (wait) await this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown();
  }

  private async close(): Promise<void> {
    await this.idle();
    await Promise.all(this.sending);
    await this.results.close();
  }

  private sourceOf(fn: AnyFunction): FunctionText {
    let text = this.sources.get(fn);
    if (!text) {
      const source = functionSource(fn);
      text = { source, bytes: payloadBytes({ strategy: SOURCE_CODE, data: source }) };
      this.sources.set(fn, text);
    }
    return text;
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
      void sending.finally(() => this.sending.delete(sending));
    }
  }

  /** Sends tasks that share one snapshot; never rejects (failures reject the tasks' futures). */
  private async sendGroup(tasks: QueuedTask[]): Promise<void> {
    const ids = new Map<string, string | Error>();
    const names = new Map<string, string>();
    for (const task of tasks) if (!names.has(task.source)) names.set(task.source, task.name);
    await Promise.all(
      [...names].map(async ([source, name]) => {
        try {
          ids.set(source, await this.functionId(source, name));
        } catch (err) {
          ids.set(source, err as Error);
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
      const functionId = ids.get(task.source);
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

  /** The function id for a source text; concurrent submits of one function share one registration. */
  private functionId(source: string, name: string): Promise<string> {
    let id = this.functionIds.get(source);
    if (!id) {
      const registering = this.client.registerFunction({ strategy: SOURCE_CODE, data: source }, name ? { name } : {});
      this.functionIds.set(source, registering);
      // A failed registration is tried again by the next submit of the function.
      registering.catch(() => {
        if (this.functionIds.get(source) === registering) this.functionIds.delete(source);
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
        this.results.listen(response.amqp.url, response.result_queue).catch((err: unknown) => {
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

  private onResult(result: ResultMessage): void {
    // Unknown or settled task: a redelivery after a reconnect, or a task of another
    // Executor attached to the same group. Dropped (the listener acks it).
    if (!this.pending.has(result.taskId)) return;
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
    const settlers = this.pending.get(taskId);
    if (!settlers) return;
    this.pending.delete(taskId);
    if (error !== undefined) settlers.reject(error);
    else settlers.resolve(value);
    if (this.pending.size === 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  private idle(): Promise<void> {
    if (this.pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
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
