/**
 * The UEP's side of the broker: consumes its task queue, hands tasks to the
 * engine (or, when the UEP could not start, fails each with the reason),
 * reports them `running` in batches, and publishes the results in batches
 * (one `results` message per batch, see {@link ResultBatcher}).
 *
 * A pool engine is handed no more tasks than it has workers: the rest wait
 * here, not started, so that a `cancel` message (which follows the tasks it
 * names in the same queue) can still drop them. Cancelled ids are remembered,
 * so a copy arriving later is dropped too; nothing is reported for them (the
 * service already stored `cancelled` and told the submitter). An engine that
 * queues tasks itself (`queuesTasks`: the high-throughput engine) gets every
 * task at once; each is reported `running` only when the engine says it
 * reached a worker, and a `cancel` takes it out of the engine's queue
 * (`engine.cancel`) until then.
 *
 * Nothing is lost: a task's delivery is acked only after the broker confirmed
 * the batch carrying its result, so a UEP that dies mid-task leaves the task
 * unacked and RabbitMQ hands it to the next UEP. Deliveries can therefore repeat (after a reconnect,
 * or a crash after the result but before the ack): a task already running here
 * is not run twice, and one finished here is acked without running again.
 */
import { setTimeout as sleep } from "node:timers/promises";
import {
  BadMessageError,
  type BrokerLink,
  type CancelTasksMessage,
  type ConfirmChannel,
  type ConsumeMessage,
  checkExchanges,
  connectBroker,
  decodeMessageKeepingGoodResults,
  directQueueSpec,
  ensureQueue,
  HEARTBEATS_EXCHANGE,
  RESULTS_EXCHANGE,
  RefusedSenders,
  type ResultMessage,
  resultsRoutingKey,
  senderOf,
  type TaskMessage,
  toWireError,
  type WireError,
} from "@conduit/protocol/wire";
import type { EngineResult } from "../engine-task.js";
import type { Engine, TaskPlacement } from "../engines/engine-types.js";
import type { SerializerAllowlist } from "../engines/serializer-allowlist.js";
import { TaskError } from "../errors.js";
import type { Logger } from "../logging.js";
import { BatchJournal, batchKey } from "./batch-journal.js";
import { ResultBatcher } from "./result-batcher.js";
import { StatusBatcher } from "./status-batcher.js";
import type { TaskAudit } from "./task-audit.js";

/** What to do with each task: run it on the engine, or fail it because the UEP could not start. */
export type TaskPolicy =
  | { engine: Engine; allowedFunctions: readonly string[] | null; serializers?: SerializerAllowlist }
  | { startError: WireError };

export interface TaskConsumerOptions {
  endpointId: string;
  uepId: string;
  /** The UEP's task queue. */
  queue: string;
  /** The RabbitMQ user the service publishes as: a task or cancel with another `user-id` is dropped. */
  serviceUser: string;
  policy: TaskPolicy;
  log: Logger;
  /**
   * How many tasks the engine can take now: the UEP asks the broker for no
   * more messages than this (its prefetch, set again at every new consume), and
   * stops consuming while it holds this many tasks (a batch holds many in one
   * message), until it holds fewer. Without it, the connection's fixed prefetch.
   */
  capacity?(): number;
  /** The UEP's directory: the finished tasks of the batches it holds are recorded there (see {@link BatchJournal}). */
  dir?: string;
  /** High-Assurance with an audit log: each task's states are recorded here. */
  audit?: TaskAudit;
  /** A new task arrived (for idle counting). */
  onTask?(): void;
  /** A result was confirmed by the broker (for idle counting). */
  onResult?(): void;
  /** The broker cancelled the consumer (the queue was deleted). */
  onCancelled?(): void;
}

/** One message from the queue: a `task`, or a `tasks` batch acked once every task in it is settled. */
interface Delivery {
  channel: ConfirmChannel;
  message: ConsumeMessage;
  /** Tasks of this message not yet settled (result confirmed, dropped, or given up on). */
  unsettled: number;
  /** A batch's key in the journal, where its settled tasks are recorded until it is acked. */
  key?: string;
}

/** A task as decoded from its message, or only its id when it was malformed (it is then failed, not run). */
type Received = TaskMessage | { taskId: string; malformed: WireError };

/** Finished task ids remembered to recognise redeliveries. */
const RECENT_DONE = 10_000;
/** Cancelled task ids remembered, so a copy that arrives after its cancel is dropped. */
const RECENT_CANCELLED = 10_000;

/** The only `resource_specification` keys the local engines accept (as Globus Compute's MPI engine). */
const RESOURCE_SPECIFICATION_KEYS: readonly string[] = Object.freeze([
  "num_nodes",
  "ranks_per_node",
  "num_ranks",
  "launcher_options",
]);

/** The REST request id each task came with (its message's correlation-id), handed to the engine with the task. */
const requestIds = new WeakMap<TaskMessage, string>();

export class TaskConsumer {
  private linkPromise: Promise<BrokerLink> | undefined;
  private consumer: { channel: ConfirmChannel; tag: string } | undefined;
  private readonly closedChannels = new WeakSet<ConfirmChannel>();
  /** Tasks received and not yet finished, with every delivery of each (a redelivery joins the first). */
  private readonly running = new Map<string, Delivery[]>();
  private readonly done = new Set<string>();
  /** Received tasks not yet handed to the engine, in arrival order. */
  private held: TaskMessage[] = [];
  /** Tasks handed to the engine whose result has not come back (and that it did not drop on a cancel). */
  private readonly inEngine = new Set<string>();
  private readonly cancelled = new Set<string>();
  private dispatching = false;
  private readonly statuses: StatusBatcher;
  private readonly results: ResultBatcher;
  private stopping = false;
  private droppingResults = false;
  private lastActivity = Date.now();
  private readonly refused: RefusedSenders;
  private readonly journal: BatchJournal | undefined;
  /** Deliveries holding unsettled tasks (not yet acked). */
  private readonly heldDeliveries = new Set<Delivery>();
  /** The prefetch of the current consumer. */
  private prefetch = 0;
  /** Consuming stopped because this UEP holds as many tasks as its engine can take. */
  private paused = false;
  /** Pauses and resumes, in order. */
  private flow: Promise<void> = Promise.resolve();

  constructor(private readonly options: TaskConsumerOptions) {
    this.journal = options.dir === undefined ? undefined : new BatchJournal(options.dir, options.log);
    this.refused = new RefusedSenders((line) => options.log.warn(line));
    this.statuses = new StatusBatcher({
      send: async (taskIds) => {
        const link = await this.link();
        await link
          .publish(RESULTS_EXCHANGE, resultsRoutingKey(options.endpointId), {
            v: 1,
            kind: "task_status",
            endpointId: options.endpointId,
            uepId: options.uepId,
            state: "running",
            taskIds,
            sentAt: Date.now(),
          })
          .catch((err: Error) =>
            options.log.warn(`Could not report ${taskIds.length} task(s) running: ${err.message}`),
          );
      },
    });
    this.results = new ResultBatcher({
      send: async (results) => {
        const link = await this.link();
        await link.publish(RESULTS_EXCHANGE, resultsRoutingKey(options.endpointId), {
          v: 1,
          kind: "results",
          results,
        });
      },
    });
  }

  /** Connects and starts consuming; `setup` runs again on every reconnect. */
  connect(url: string, broker: { name: string; prefetch: number }): Promise<BrokerLink> {
    this.prefetch = broker.prefetch;
    this.linkPromise ??= connectBroker(url, {
      name: broker.name,
      prefetch: broker.prefetch,
      // A UEP that cannot reach the broker at start has nobody to tell; give up soon and exit.
      initialMaxRetries: 5,
      setup: (channel, link) => this.setup(channel, link),
    });
    return this.linkPromise;
  }

  private link(): Promise<BrokerLink> {
    if (!this.linkPromise) throw new Error("TaskConsumer.connect() was not called");
    return this.linkPromise;
  }

  /** Tasks received and not finished. */
  get outstanding(): number {
    return this.running.size;
  }

  /** Stops taking tasks; deliveries that still arrive stay unacked and go back to the queue. */
  async stopConsuming(): Promise<void> {
    this.stopping = true;
    const consumer = this.consumer;
    this.consumer = undefined;
    if (consumer && !this.closedChannels.has(consumer.channel)) {
      await consumer.channel.cancel(consumer.tag).catch(() => undefined);
    }
    await this.statuses.flush();
  }

  /**
   * From now on results are not published: the tasks stay unacked and the
   * broker redelivers them to the next UEP (used at shutdown, where the engine
   * fails whatever is still outstanding).
   */
  dropResults(): void {
    this.droppingResults = true;
  }

  /** Resolves once nothing is running, or after `timeoutMs`. */
  async waitForRunning(timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.running.size > 0 && Date.now() < until) await sleep(50);
  }

  /** Resolves once nothing is running and no delivery arrived for `quietMs` (the queue is drained). */
  async waitForQuiet(quietMs: number, signal?: AbortSignal): Promise<void> {
    while (!signal?.aborted) {
      const quietFor = Date.now() - this.lastActivity;
      if (this.running.size === 0 && quietFor >= quietMs) return;
      await sleep(Math.min(100, Math.max(10, quietMs - quietFor)));
    }
  }

  private async setup(channel: ConfirmChannel, link: BrokerLink): Promise<void> {
    channel.once("close", () => {
      this.closedChannels.add(channel);
      // The broker took these back; they no longer count against the prefetch.
      for (const delivery of this.heldDeliveries)
        if (delivery.channel === channel) this.heldDeliveries.delete(delivery);
    });
    // From the protocol's topology table: the exchanges it publishes to are
    // checked passively (a UEP never declares them), and its own queue is
    // asserted with the service's arguments (the service declared and bound it).
    await checkExchanges(channel, [RESULTS_EXCHANGE, HEARTBEATS_EXCHANGE]);
    // Only checked when it exists: its type is the service's --amqp-queue-type.
    await ensureQueue(channel, link, directQueueSpec(this.options.queue));
    if (this.stopping) return;
    this.paused = false;
    await this.consume(channel);
  }

  /** Starts a consumer on `channel`, with the prefetch the engine's capacity calls for now. */
  private async consume(channel: ConfirmChannel): Promise<void> {
    const { capacity } = this.options;
    if (capacity) {
      this.prefetch = capacity();
      // Per consumer (RabbitMQ's basic.qos with global=false): it applies to the consumer started next.
      await channel.prefetch(this.prefetch);
    }
    const { consumerTag } = await channel.consume(this.options.queue, (message) => this.onDelivery(channel, message));
    if (this.stopping) {
      await channel.cancel(consumerTag).catch(() => undefined);
      return;
    }
    this.consumer = { channel, tag: consumerTag };
  }

  /**
   * Keeps the tasks held here near the engine's capacity: stops consuming while
   * this UEP holds as many tasks as the engine can take and the broker would
   * still send more (its prefetch counts messages, and a batch holds many
   * tasks); consumes again, with the prefetch set to the capacity of the moment,
   * once it holds fewer, or when the capacity grew past the prefetch (blocks
   * joined). The messages left in the queue go to any other consumer meanwhile.
   */
  private pace(): void {
    const { capacity } = this.options;
    if (!capacity || this.stopping) return;
    const room = capacity();
    if (!this.paused) {
      const full = this.running.size >= room && this.heldDeliveries.size < this.prefetch;
      if (full || (room > this.prefetch && this.running.size < room)) {
        this.paused = true;
        this.flow = this.flow.then(() => this.pauseNow(full));
      }
    } else if (this.running.size < room) {
      this.paused = false;
      this.flow = this.flow.then(() => this.resumeNow());
    }
  }

  private async pauseNow(full: boolean): Promise<void> {
    const consumer = this.consumer;
    this.consumer = undefined;
    if (consumer && !this.closedChannels.has(consumer.channel)) {
      await consumer.channel.cancel(consumer.tag).catch(() => undefined);
    }
    if (full) {
      this.options.log.debug(`Holding ${this.running.size} task(s), the engine's capacity; paused consuming`);
    } else {
      // Only to take the new prefetch: consume again at once.
      this.paused = false;
      await this.resumeNow();
    }
  }

  private async resumeNow(): Promise<void> {
    if (this.paused || this.stopping || this.consumer) return;
    try {
      const channel = await (await this.link()).ready();
      if (this.closedChannels.has(channel)) return;
      await this.consume(channel);
      this.options.log.debug(`Holding ${this.running.size} task(s); consuming again (prefetch ${this.prefetch})`);
    } catch (err) {
      // The channel closed under us: the reconnect's setup consumes again.
      this.options.log.debug(`Could not consume again (${(err as Error).message}); the reconnect will`);
    }
  }

  private onDelivery(channel: ConfirmChannel, message: ConsumeMessage | null): void {
    const { log } = this.options;
    if (message === null) {
      log.warn(`The broker cancelled the consumer of ${this.options.queue} (was the queue deleted?)`);
      this.options.onCancelled?.();
      return;
    }
    this.lastActivity = Date.now();
    if (this.stopping) return;
    // Tasks and cancels come only from the service: user-id is checked by RabbitMQ, the body by nobody.
    const sender = senderOf(message);
    if (sender !== this.options.serviceUser) {
      this.refused.refuse(
        sender,
        `a message in ${this.options.queue}: only ${this.options.serviceUser} may send tasks`,
      );
      this.ackNow(channel, message);
      return;
    }
    // Each task of a batch is checked on its own: a malformed one is failed (or dropped), the others run.
    const tasks: Received[] = [];
    try {
      const decoded = decodeMessageKeepingGoodResults(message.content, ["task", "tasks", "cancel"], (err) => {
        const taskId = err.details.taskId;
        if (taskId === undefined) log.warn(`Dropped a malformed task: ${err.message}`);
        else tasks.push(malformedTask(taskId, err));
      });
      if (decoded.kind === "cancel") {
        this.cancel(decoded);
        this.ackNow(channel, message);
        return;
      }
      if (decoded.kind === "tasks") tasks.push(...decoded.tasks);
      else tasks.push(decoded);
    } catch (err) {
      const taskId = err instanceof BadMessageError && err.details.kind === "task" ? err.details.taskId : undefined;
      if (taskId === undefined) {
        log.warn(`Dropped a malformed task message: ${(err as Error).message}`);
        this.ackNow(channel, message);
        return;
      }
      // Its submitter waits for a result: fail the task, naming the field, rather than drop it.
      tasks.push(malformedTask(taskId, err as BadMessageError));
    }
    // A batch naming one task twice settles it once per copy (each copy holds the message).
    const delivery: Delivery = { channel, message, unsettled: tasks.length };
    if (tasks.length === 0) this.ackNow(channel, message);
    else this.heldDeliveries.add(delivery);
    let finishedEarlier: Set<string> | undefined;
    if (tasks.length > 1 && this.journal) {
      delivery.key = batchKey(tasks.map((t) => t.taskId));
      // Given back by a UEP that died holding it: what that UEP finished is not run again.
      if (message.fields.redelivered) finishedEarlier = this.journal.finished(delivery.key);
    }
    if (finishedEarlier !== undefined && finishedEarlier.size > 0) {
      log.info(
        `A batch of ${tasks.length} tasks came back from an earlier user endpoint of this queue, which had finished ${finishedEarlier.size} of them; running only the rest`,
        { batch: delivery.key, finished: finishedEarlier.size },
      );
    }
    for (const task of tasks) {
      if (finishedEarlier?.has(task.taskId) && !this.running.has(task.taskId)) {
        this.remember(task.taskId);
        this.settle(delivery, task.taskId, false);
      } else {
        this.receive(task, delivery);
      }
    }
    this.pace();
  }

  /** One task of a delivery: run it, join the copy already running, or settle it at once. */
  private receive(task: Received, delivery: Delivery): void {
    const { log } = this.options;
    const { taskId } = task;
    const deliveries = this.running.get(taskId);
    if (deliveries) {
      log.debug(`Task ${taskId} redelivered while it runs here; not running it twice`);
      deliveries.push(delivery);
      return;
    }
    if (this.done.has(taskId)) {
      log.debug(`Task ${taskId} redelivered after its result was sent; dropping the copy`);
      this.settle(delivery, taskId);
      return;
    }
    if (this.cancelled.has(taskId)) {
      log.info(`Task ${taskId} was cancelled; dropping it without running it`);
      this.settle(delivery, taskId);
      return;
    }
    this.running.set(taskId, [delivery]);
    this.options.onTask?.();
    if ("malformed" in task) {
      void this.finish({ taskId, ok: false, error: task.malformed });
      return;
    }
    // The submit's REST request id rides in correlation-id: one grep finds the task in every log.
    const requestId =
      typeof delivery.message.properties.correlationId === "string"
        ? delivery.message.properties.correlationId
        : undefined;
    if (requestId !== undefined) requestIds.set(task, requestId);
    log.debug(`Task ${taskId} received`, { task_id: taskId, reqId: requestId });
    this.options.audit?.received(taskId, task.functionId);
    if (task.resourceSpecification !== undefined) {
      log.debug(`Task ${taskId} resource_specification: ${JSON.stringify(task.resourceSpecification)}`);
    }
    const refusal = this.refusal(task);
    if (refusal) {
      void this.finish({ taskId, ok: false, error: refusal });
      return;
    }
    this.held.push(task);
    this.dispatch();
  }

  /** Hands held tasks to the engine while it has room (re-entrant calls, from a synchronous result, return at once). */
  private dispatch(): void {
    if (this.dispatching || !("engine" in this.options.policy)) return;
    const { engine } = this.options.policy;
    this.dispatching = true;
    try {
      const room = engine.queuesTasks ? Infinity : Math.max(1, engine.status().totalWorkers);
      while (this.held.length > 0 && this.inEngine.size < room && !this.droppingResults) {
        this.submitToEngine(engine, this.held.shift() as TaskMessage);
      }
    } finally {
      this.dispatching = false;
    }
  }

  /**
   * Drops the named tasks still held here, or still queued in an engine that
   * can drop them (acked, never run, nothing reported), and remembers every
   * id, so a copy that arrives later is dropped as well.
   */
  private cancel(message: CancelTasksMessage): void {
    const { log } = this.options;
    for (const taskId of message.taskIds) {
      this.cancelled.add(taskId);
      if (this.cancelled.size > RECENT_CANCELLED) this.cancelled.delete(this.cancelled.values().next().value as string);
      const index = this.held.findIndex((t) => t.taskId === taskId);
      if (index >= 0) {
        this.held.splice(index, 1);
      } else if (this.inEngine.has(taskId)) {
        if (!this.dropFromEngine(taskId)) {
          log.info(`Task ${taskId} was cancelled after it started; it runs to the end`);
          continue;
        }
      } else {
        continue;
      }
      this.statuses.remove(taskId);
      const deliveries = this.running.get(taskId) ?? [];
      this.running.delete(taskId);
      for (const delivery of deliveries) this.settle(delivery, taskId);
      this.lastActivity = Date.now();
      log.info(`Task ${taskId} was cancelled before it started; dropped it`);
    }
    // A task dropped from the engine freed its room there.
    this.dispatch();
  }

  /** Asks the engine to drop a task it has not started; true if it did (no result will come). */
  private dropFromEngine(taskId: string): boolean {
    if (!("engine" in this.options.policy)) return false;
    const { engine } = this.options.policy;
    if (engine.cancel?.(taskId) !== true) return false;
    this.inEngine.delete(taskId);
    return true;
  }

  private submitToEngine(engine: Engine, task: TaskMessage): void {
    const { log } = this.options;
    const { taskId } = task;
    this.inEngine.add(taskId);
    // Reported before submit: an engine may call back synchronously, and the result must win.
    // An engine that reports starts says so itself (onEngineStarted), before any result.
    if (engine.reportsStarts !== true) this.statuses.add(taskId);
    this.options.audit?.execStart(taskId);
    try {
      engine.submit({
        taskId,
        functionId: task.functionId,
        function: task.function,
        args: task.args,
        resourceSpecification: task.resourceSpecification,
        submitter: task.submitter,
        requestId: requestIds.get(task),
      });
    } catch (err) {
      log.error(`Failed to submit task ${taskId} to the engine: ${(err as Error).message}`);
      void this.finish({ taskId, ok: false, error: toWireError(err, "TASK_SUBMIT_FAILED") });
    }
  }

  /** Why this task must not run, or undefined. */
  private refusal(task: TaskMessage): WireError | undefined {
    const { policy, uepId, log } = this.options;
    if ("startError" in policy) return policy.startError;
    if (policy.allowedFunctions !== null && !policy.allowedFunctions.includes(task.functionId)) {
      const message = `Function ${task.functionId} not permitted on endpoint ${uepId}`;
      log.warn(message);
      this.options.audit?.notPermitted(task.taskId);
      return toWireError(new TaskError("FUNCTION_NOT_ALLOWED", message));
    }
    return resourceSpecificationProblem(task) ?? policy.serializers?.check(task);
  }

  /**
   * The callback of an engine with `reportsStarts`: these tasks reached a
   * worker. A task whose result already came (or that was dropped) is not
   * reported, so a `running` never follows its result.
   */
  onEngineStarted(taskIds: string[], placement?: TaskPlacement): void {
    const started = taskIds.filter((taskId) => this.inEngine.has(taskId));
    for (const taskId of started) this.statuses.add(taskId);
    if (placement) this.options.audit?.running(started, placement);
  }

  /** The engine's callback: one outcome per submitted task. */
  onEngineResult(result: EngineResult): void {
    void this.finish(result);
  }

  private async finish(result: EngineResult): Promise<void> {
    const { log, endpointId, uepId } = this.options;
    const { taskId } = result;
    const deliveries = this.running.get(taskId);
    if (!deliveries) {
      log.warn(`Ignoring a second result for task ${taskId}`);
      return;
    }
    // Its worker is free: the next held task may start.
    if (this.inEngine.delete(taskId)) this.dispatch();
    // Shutting down: the task goes back to the queue instead of failing here.
    if (this.droppingResults) return;
    this.statuses.remove(taskId);
    const message: ResultMessage = {
      v: 1,
      kind: "result",
      taskId,
      endpointId,
      uepId,
      state: result.ok ? "success" : "failed",
      completedAt: Date.now(),
    };
    if (result.ok) message.result = result.value;
    else message.error = result.error;
    this.options.audit?.execEnd(taskId);
    try {
      await this.results.add(message);
    } catch (err) {
      log.error(
        `Could not send the result of task ${taskId} (${(err as Error).message}); the broker will redeliver it`,
      );
      this.running.delete(taskId);
      return;
    }
    // Ack only after the broker confirmed the result: until then the task is safe in its queue.
    this.running.delete(taskId);
    this.remember(taskId);
    for (const delivery of deliveries) this.settle(delivery, taskId);
    this.lastActivity = Date.now();
    this.options.onResult?.();
    log.debug(`Task ${taskId} ${message.state}`);
  }

  /**
   * One task of the delivery is settled; the message is acked once all of its
   * tasks are. Until then the broker keeps it, and a UEP that dies hands the
   * whole batch to the next; the settled tasks are recorded in the journal
   * (`record`, unless they came from it), so the next UEP does not run them again.
   */
  private settle(delivery: Delivery, taskId: string, record = true): void {
    delivery.unsettled--;
    if (delivery.unsettled === 0) {
      this.heldDeliveries.delete(delivery);
      this.ackNow(delivery.channel, delivery.message);
      if (delivery.key !== undefined) this.journal?.forget(delivery.key);
    } else if (record && delivery.key !== undefined) {
      this.journal?.record(delivery.key, taskId);
    }
    this.pace();
  }

  /** Every batch was acked (nothing left in the queue or held here): drops whatever the journal still holds. */
  clearJournal(): void {
    this.journal?.clear();
  }

  private ackNow(channel: ConfirmChannel, message: ConsumeMessage): void {
    // A closed channel's deliveries were already requeued by the broker; acking them would be an error.
    if (this.closedChannels.has(channel)) return;
    try {
      channel.ack(message);
    } catch (err) {
      this.options.log.debug(`Ack failed (${(err as Error).message}); the broker will redeliver`);
    }
  }

  private remember(taskId: string): void {
    this.done.add(taskId);
    if (this.done.size > RECENT_DONE) this.done.delete(this.done.values().next().value as string);
  }
}

/** A task whose message was malformed but whose id is sound: it is failed, naming the field, not run. */
function malformedTask(taskId: string, err: BadMessageError): Received {
  return {
    taskId,
    malformed: toWireError(
      new TaskError(
        "BAD_TASK",
        `Task ${taskId} is malformed: ${err.details.problem}; it was not run (resubmit it with a current SDK).`,
      ),
    ),
  };
}

/** A `resource_specification` key the local engines do not accept (decodeMessage made sure it is an object). */
function resourceSpecificationProblem(task: TaskMessage): WireError | undefined {
  const spec = task.resourceSpecification;
  if (spec === undefined) return undefined;
  const bad = Object.keys(spec).find((key) => !RESOURCE_SPECIFICATION_KEYS.includes(key));
  if (bad === undefined) return undefined;
  return toWireError(
    new TaskError(
      "INVALID_RESOURCE_SPECIFICATION",
      `Task ${task.taskId} has resource_specification key '${bad}', which this endpoint's engine does not accept; use only: ${RESOURCE_SPECIFICATION_KEYS.join(", ")}.`,
    ),
  );
}
