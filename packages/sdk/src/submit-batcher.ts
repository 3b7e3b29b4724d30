/**
 * The Executor's submit batcher: queued tasks go out together on the next
 * macrotask, or at once when `batchSize` are queued. A flush groups the queue
 * by snapshot (tasks with equal `userEndpointConfig` and `resourceSpecification`
 * share requests), registers each group's functions, and splits the group into
 * POSTs of at most `batchSize` tasks and `maxRequestBytes`, with at most
 * {@link MAX_CONCURRENT_REQUESTS} in flight. The first request creates the task
 * group; the later ones carry its id, so that every result arrives on one queue.
 */
import {
  type Payload,
  PayloadTooLargeError,
  type SubmitRequest,
  type SubmitResponse,
  type SubmitTask,
} from "@conduit/protocol";
import type { CompiledExecutorOptions } from "./executor-options.js";
import { userRuntime } from "./user-runtime.js";

/** The user's per-submit values, frozen as JSON (a deep copy) at submit time. */
export interface Snapshot {
  /** Canonical JSON of both values: equal keys go in the same requests. */
  key: string;
  userEndpointConfig: Record<string, unknown> | undefined;
  resourceSpecification: Record<string, unknown> | undefined;
}

/** A function to register (once per payload), or the id of a registered one. */
export type FunctionRef = { code: ShippedCode } | { functionId: string };

export interface ShippedCode {
  payload: Payload;
  name: string;
  /** Payloads with equal keys are one registration. */
  key: string;
  bytes: number;
}

export interface QueuedTask {
  taskId: string;
  fn: FunctionRef;
  args: Payload;
  snapshot: Snapshot;
}

/** What the batcher asks of the Executor. */
export interface SubmitBatcherHooks {
  /** The function id for a payload; one payload is registered once. */
  functionId(code: ShippedCode): Promise<string>;
  /** The service accepted these tasks; their results will arrive on `response.result_queue`. */
  accepted(taskIds: string[], response: SubmitResponse): void;
  /** A task could not be sent: its future rejects with `error`. */
  refused(taskId: string, error: unknown): void;
}

/** The options the batcher reads. */
export type SubmitBatcherOptions = Pick<
  CompiledExecutorOptions,
  "client" | "endpointId" | "taskGroupId" | "batchSize" | "maxRequestBytes"
>;

/** Submit requests in flight at once. */
const MAX_CONCURRENT_REQUESTS = 4;
/** Room kept in every request for the task group id, which may be learnt after the request was sized. */
const TASK_GROUP_ALLOWANCE = 128;

export class SubmitBatcher {
  private readonly runtime = userRuntime();
  private groupId: string | undefined;
  private queue: QueuedTask[] = [];
  private flushTimer: NodeJS.Immediate | undefined;
  /** The send (registration and POST) each task in flight belongs to. */
  private readonly sendOf = new Map<string, Promise<void>>();
  private readonly sending = new Set<Promise<void>>();
  private firstRequest: Promise<void> | undefined;
  private readonly requestSlots = new Semaphore(MAX_CONCURRENT_REQUESTS);

  constructor(
    private readonly options: SubmitBatcherOptions,
    private readonly hooks: SubmitBatcherHooks,
  ) {
    this.groupId = options.taskGroupId;
  }

  /** The task group of every request; known after the first submit response unless given. */
  get taskGroupId(): string | undefined {
    return this.groupId;
  }

  /** Queues a task: sent on the next macrotask, or now if the queue holds `batchSize` tasks. */
  add(task: QueuedTask): void {
    this.queue.push(task);
    if (this.queue.length >= this.options.batchSize) this.flush();
    else this.flushTimer ??= setImmediate(() => this.flush());
  }

  /** Takes a task out of the queue; false if it is not queued (being sent, or never queued). */
  remove(taskId: string): boolean {
    const queued = this.queue.findIndex((task) => task.taskId === taskId);
    if (queued < 0) return false;
    this.queue.splice(queued, 1);
    return true;
  }

  /** The send (registration and POST) carrying `taskId` while it is in flight; it never rejects. */
  inFlight(taskId: string): Promise<void> | undefined {
    return this.sendOf.get(taskId);
  }

  /** Drops every queued task; nothing more is sent for them. */
  discard(): void {
    this.cancelTimer();
    this.queue = [];
  }

  /** Sends what is queued now. */
  flush(): void {
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

  /** Resolves once every send started so far has finished. */
  async drained(): Promise<void> {
    await Promise.all(this.sending);
  }

  private cancelTimer(): void {
    if (this.flushTimer) clearImmediate(this.flushTimer);
    this.flushTimer = undefined;
  }

  /** Sends tasks that share one snapshot; never rejects (failures reject the tasks' futures). */
  private async sendGroup(tasks: QueuedTask[]): Promise<void> {
    const ids = new Map<string, string | Error>();
    const codes = new Map<string, ShippedCode>();
    for (const { fn } of tasks) if ("code" in fn) codes.set(fn.code.key, fn.code);
    await Promise.all(
      [...codes].map(async ([key, code]) => {
        try {
          ids.set(key, await this.hooks.functionId(code));
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
        this.hooks.refused(task.taskId, functionId);
        continue;
      }
      const submitTask: SubmitTask = { task_id: task.taskId, function_id: functionId, args: task.args };
      const size = jsonBytes(submitTask) + 1;
      if (envelope + size > maxRequestBytes) {
        this.hooks.refused(
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

  private async post(tasks: SubmitTask[], snapshot: Snapshot): Promise<void> {
    const release = await this.requestSlots.acquire();
    let first = false;
    try {
      // The first request creates the task group; the others wait for its id so that
      // every result of this Executor arrives on one queue.
      while (this.groupId === undefined && this.firstRequest) await this.firstRequest;
      const call = this.options.client.submit(this.options.endpointId, this.requestBody(tasks, snapshot));
      if (this.groupId === undefined) {
        first = true;
        this.firstRequest = call.then(noop, noop);
      }
      const response = await call;
      this.groupId ??= response.task_group_id;
      this.hooks.accepted(
        tasks.map((task) => task.task_id),
        response,
      );
    } catch (err) {
      for (const task of tasks) this.hooks.refused(task.task_id, err);
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
