/**
 * Consumes {@link RESULTS_QUEUE}: results (one per `result` message, several
 * per `results` message) and `running` reports from UEPs.
 * Batching adapts to load: a delivery that finds a flush loop free is stored at
 * once (with whatever else arrived in the same tick), so a lone result waits
 * for nothing; under load, deliveries pile up while the loops are busy and the
 * next batch takes them all (up to a batch size). One statement stores the
 * running reports of a batch and one its results; the results are then
 * forwarded, one `results` message per task group queue, and only after that
 * are the originals acked. While one batch is forwarded the next is stored.
 * A result is forwarded only once it is stored, so an Executor never holds a
 * result whose task a status read still shows unfinished.
 * A crash anywhere before the ack means a redelivery, which the store ignores
 * (the task is terminal) and forwards again: the SDK dedupes by task id. The
 * results of a High-Assurance endpoint's tasks are stored as any, but only a
 * notice of each is forwarded (no result, no error): the SDK fetches them.
 *
 * A result can beat its task's row: the submit publishes its tasks while it
 * stores them. Such a delivery is held, unacked, and flushed again (5 ms,
 * doubling to 1 s) until the row exists; it is then stored under the same
 * sender checks as any other. One whose row does not come within
 * `unknownTaskHoldMs` (30 s) is dropped with a log line and acked; at most
 * 100 deliveries are held at once (beyond that the oldest is given up), so
 * held results never take the prefetch from the others.
 *
 * Who sent a message is its `user-id` (RabbitMQ checks it against the
 * publishing connection's user), never the ids in its body: a message without
 * one, or whose body names another endpoint than its routing key, is refused
 * here; a result or running report from an account other than the task's UEP
 * or endpoint is refused by the store's statement itself. Refused messages are
 * acked, dropped, and logged at most once a minute per account.
 */
import { setTimeout as sleep } from "node:timers/promises";
import {
  BadMessageError,
  type ConfirmChannel,
  type ConsumeMessage,
  decodeMessageKeepingGoodResults,
  RESULTS_QUEUE,
  RefusedSenders,
  type ResultMessage,
  routingKeyEndpoint,
  senderOf,
  type TaskStatusMessage,
  taskGroupResultQueue,
  toWireError,
} from "@conduit/protocol";
import type { FastifyBaseLogger } from "fastify";
import { TaskEndedError } from "../errors.js";
import type { ServiceMetrics } from "../metrics.js";
import type { Store } from "../store/store.js";
import type { ReportSender, TaskResultInput } from "../store/store-types.js";
import { hasNul, withoutNul } from "./message-checks.js";
import type { BrokerConsumer, Outgoing, ServiceBroker } from "./service-broker.js";

export interface ResultConsumerOptions {
  /** Most results (and running reports) handled by one statement, give or take one delivery. @default 500 */
  maxBatch?: number;
  /**
   * With `--shared-broker-account`: the accounts every endpoint and UEP
   * shares (the service's own, and the public URL's user), which may report
   * any task. Unset (scoped accounts), a task is reported only by its UEP's or
   * its endpoint's own account.
   */
  sharedAccounts?: ReadonlySet<string>;
  /** Told of every result stored. */
  metrics?: Pick<ServiceMetrics, "resultStored">;
  /**
   * How long a result whose task is not stored yet is held (unacked, tried
   * again) before it is dropped with a log line, in ms: the submit publishes
   * its tasks while it stores them, so a fast result can beat its task's row.
   * @default 30_000
   */
  unknownTaskHoldMs?: number;
}

/** Deliveries held for their tasks' rows at most, so held ones never eat the prefetch: beyond it the oldest is dropped. */
const MAX_HELD = 100;
/** First wait before a held delivery is tried again (doubling, up to {@link MAX_HOLD_RETRY_MS}). */
const FIRST_HOLD_RETRY_MS = 5;
const MAX_HOLD_RETRY_MS = 1000;

/** Message bytes per stored batch, beyond its first delivery. */
const MAX_BATCH_BYTES = 4 * 1024 * 1024;

/**
 * Batches in flight at once. Each delivery is acked on its own, so batches may
 * finish in any order; a task's second result only ever finds it terminal.
 */
const MAX_FLUSHERS = 2;

interface Delivery {
  channel: ConfirmChannel;
  raw: ConsumeMessage;
  /** The `user-id` it came with. */
  sender: string;
  /** A `results` delivery's valid results, or the one result or running report. */
  messages: Array<ResultMessage | TaskStatusMessage>;
  /** Set once it was held for a task not stored yet: when it first was, and how often. */
  held?: { since: number; tries: number; timer?: NodeJS.Timeout };
}

export class ResultConsumer implements BrokerConsumer {
  private readonly maxBatch: number;
  private pending: Delivery[] = [];
  private scheduled = false;
  /** Flush loops running; two, so one batch is stored while the previous one is forwarded. */
  private readonly flushers = new Set<Promise<void>>();
  private consumer: { channel: ConfirmChannel; tag: string } | undefined;
  private stopped = false;
  private readonly sharedAccounts: ReadonlySet<string> | undefined;
  private readonly refused: RefusedSenders;
  private readonly metrics: ResultConsumerOptions["metrics"];
  private readonly holdMs: number;
  /** Deliveries waiting for their tasks' rows, oldest first. */
  private readonly held: Delivery[] = [];

  constructor(
    private readonly store: Store,
    private readonly broker: ServiceBroker,
    private readonly logger: FastifyBaseLogger,
    options: ResultConsumerOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 500;
    this.sharedAccounts = options.sharedAccounts;
    this.metrics = options.metrics;
    this.holdMs = options.unknownTaskHoldMs ?? 30_000;
    this.refused = new RefusedSenders((line) => logger.warn(line));
  }

  async attach(channel: ConfirmChannel): Promise<void> {
    if (this.stopped) return;
    // Deliveries of a dead channel cannot be acked; the broker redelivers them.
    this.pending = this.pending.filter((d) => d.channel === channel);
    for (const d of this.held.filter((h) => h.channel !== channel)) this.unhold(d);
    const { consumerTag } = await channel.consume(RESULTS_QUEUE, (raw) => {
      if (raw) this.receive(channel, raw);
    });
    this.consumer = { channel, tag: consumerTag };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    // Held deliveries stay unacked: the broker gives them back, to this process or another.
    for (const d of this.held.splice(0)) clearTimeout(d.held?.timer);
    const consumer = this.consumer;
    this.consumer = undefined;
    if (consumer) await consumer.channel.cancel(consumer.tag).catch(() => undefined);
    await this.drain();
  }

  private receive(channel: ConfirmChannel, raw: ConsumeMessage): void {
    const sender = senderOf(raw);
    if (sender === undefined) {
      this.refused.refuse(
        sender,
        `a message on ${RESULTS_QUEUE} (routing key ${raw.fields.routingKey}) without user-id`,
      );
      settle(channel, raw);
      return;
    }
    let messages: Array<ResultMessage | TaskStatusMessage>;
    try {
      // A `results` message keeps its good results; each malformed one is logged and dropped.
      const message = decodeMessageKeepingGoodResults(raw.content, ["result", "results", "task_status"], (err) =>
        this.logger.warn({ routingKey: raw.fields.routingKey }, err.message),
      );
      if (message.kind === "results") {
        messages = message.results.filter((item) => {
          if (fromEndpoint(item)) return this.sameEndpoint(item, raw, sender);
          this.logger.warn(
            { routingKey: raw.fields.routingKey },
            `Broker message results: the result of task ${item.taskId}: ${CANCELLED_FROM_ENDPOINT}; that result was dropped.`,
          );
          return false;
        });
      } else {
        if (message.kind === "result" && !fromEndpoint(message)) {
          throw new BadMessageError(`Broker message result: ${CANCELLED_FROM_ENDPOINT}; it was dropped.`, {
            kind: "result",
            field: "state",
          });
        }
        messages = this.sameEndpoint(message, raw, sender) ? [message] : [];
      }
    } catch (err) {
      this.logger.warn({ err, routingKey: raw.fields.routingKey }, (err as Error).message);
      settle(channel, raw);
      return;
    }
    if (messages.length === 0) {
      settle(channel, raw);
      return;
    }
    this.enqueue({ channel, raw, sender, messages });
  }

  private enqueue(delivery: Delivery): void {
    this.pending.push(delivery);
    // Busy loops take the pending deliveries when they finish their batch; a
    // free one is started after this tick's other deliveries have arrived.
    if (this.flushers.size < MAX_FLUSHERS && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        void this.drain();
      });
    }
  }

  /**
   * False (the refusal logged) when the body names another endpoint than the
   * routing key: topic permissions hold each account to its own endpoint's key.
   */
  private sameEndpoint(message: ResultMessage | TaskStatusMessage, raw: ConsumeMessage, sender: string): boolean {
    const keyEndpoint = routingKeyEndpoint(raw.fields.routingKey);
    if (message.endpointId.toLowerCase() === keyEndpoint.toLowerCase()) return true;
    const what = message.kind === "task_status" ? "a running report" : `a result for task ${message.taskId}`;
    this.refused.refuse(
      sender,
      `${what} naming endpoint ${message.endpointId} under the routing key of endpoint ${keyEndpoint}`,
    );
    return false;
  }

  /** Starts flush loops (up to {@link MAX_FLUSHERS}) and resolves once nothing is pending. */
  private async drain(): Promise<void> {
    while (this.flushers.size < MAX_FLUSHERS && this.pending.length > 0) {
      const flusher = (async () => {
        while (this.pending.length > 0) await this.flushWithRetry(this.takeBatch());
      })().finally(() => this.flushers.delete(flusher));
      this.flushers.add(flusher);
    }
    await Promise.all(this.flushers);
  }

  /**
   * Deliveries up to {@link maxBatch} messages and {@link MAX_BATCH_BYTES} in
   * all (at least one delivery, however big): big results go a few at a time,
   * so one is stored while the one before it is forwarded, rather than all in
   * one statement and then all forwarded.
   */
  private takeBatch(): Delivery[] {
    let count = 0;
    let size = 0;
    let bytes = 0;
    while (count < this.pending.length) {
      const next = this.pending[count] as Delivery;
      if (count > 0 && bytes + next.raw.content.length > MAX_BATCH_BYTES) break;
      size += next.messages.length;
      bytes += next.raw.content.length;
      count++;
      if (size >= this.maxBatch) break;
    }
    return this.pending.splice(0, count);
  }

  private async flushWithRetry(batch: Delivery[]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.flush(batch);
        return;
      } catch (err) {
        // Nothing was acked: the store or the broker is down. Keep the batch
        // (unacked, it stays ours) and try again, unless its channel died
        // (then the broker redelivers it) or the service is stopping.
        const live = batch.filter((d) => d.channel === this.broker.channel);
        this.logger.error({ err }, `Could not store or forward ${batch.length} results; retrying.`);
        if (this.stopped || live.length === 0) return;
        batch = live;
        await sleep(Math.min(250 * 2 ** attempt, 5000));
      }
    }
  }

  private async flush(batch: Delivery[]): Promise<void> {
    const running: Array<{ taskId: string; endpointId: string } & ReportSender> = [];
    const results: StoredInput[] = [];
    for (const delivery of batch) {
      const { messages, raw, sender } = delivery;
      const from: ReportSender = { sender, sharedAccount: this.sharedAccounts?.has(sender) ?? false };
      for (const message of messages) {
        if (message.kind === "task_status") {
          for (const taskId of message.taskIds) running.push({ taskId, endpointId: message.endpointId, ...from });
        } else if (message.state !== "cancelled") {
          results.push({
            ...toResultInput(message as ResultMessage & { state: "success" | "failed" }, from),
            // A held delivery flushed again forwards only what it stores now.
            redelivered: raw.fields.redelivered && delivery.held === undefined,
            delivery,
          });
        }
      }
    }
    // Both statements at once: a running report never overrides a terminal state, so
    // whichever lands first, a result in the same batch wins.
    const [marked, stored] = await Promise.all([
      running.length > 0 ? this.store.markTasksRunning(running) : undefined,
      this.store.storeResults(results),
    ]);
    for (const r of marked?.refused ?? []) {
      this.refused.refuse(r.sender, `a running report for task ${r.taskId}, which it may not report`);
    }
    /** Deliveries with a result whose task has no row yet: held, not acked. */
    const waiting = new Set<Delivery>();
    const byReport = new Map(stored.map((s) => [reportKey(s.taskId, s.sender), s]));
    /** Results to forward, grouped by task group queue: one `results` message per queue. */
    const forward = new Map<string, ResultMessage[]>();
    const forwarded = new Set<string>();
    for (const result of results) {
      const s = byReport.get(reportKey(result.taskId, result.sender));
      // Two copies in one batch are forwarded once.
      if (forwarded.has(result.taskId)) continue;
      if (!s) {
        // Its submit may still be storing it (the insert and the publish overlap).
        if (this.mayHold(result.delivery)) waiting.add(result.delivery);
        else {
          this.logger.warn(
            `Result for unknown task ${result.taskId} from endpoint ${result.endpointId} was dropped: no such task was stored within ${this.holdMs} ms of its arrival.`,
          );
        }
      } else if (s.refused) {
        this.refused.refuse(result.sender, `a result for task ${result.taskId}, which it may not report`);
      } else if (s.updated || result.redelivered) {
        if (s.updated) this.metrics?.resultStored(result.endpointId, result.taskId, result.state);
        // Stored now, or possibly stored by a delivery that died before it was
        // forwarded. A second result of a terminal task (a re-run, a UEP's
        // re-send) is not forwarded: the SDK has the first.
        addForward(forward, result, s);
        forwarded.add(result.taskId);
      }
    }
    await this.publishForwards(forward);
    // Ack only after the result is stored and forwarded.
    for (const d of batch) {
      if (waiting.has(d)) {
        this.hold(d);
        continue;
      }
      if (d.held) this.unhold(d);
      settle(d.channel, d.raw);
    }
  }

  /** One `results` message per task group queue (split by size), published together. */
  private async publishForwards(forward: Map<string, ResultMessage[]>): Promise<void> {
    if (forward.size === 0) return;
    await this.broker.ensureQueues(forward.keys());
    const outgoing: Outgoing[] = [...forward].flatMap(([queue, group]) =>
      chunkBySize(group).map((chunk): Outgoing => ({ queue, message: { v: 1, kind: "results", results: chunk } })),
    );
    await this.broker.publishAll(outgoing);
  }

  /** Whether a delivery with a result for a task not stored (yet) may wait longer for its row. */
  private mayHold(d: Delivery): boolean {
    return !this.stopped && (d.held === undefined || Date.now() - d.held.since < this.holdMs);
  }

  /**
   * Keeps a delivery unacked and flushes it again a little later: the results
   * already stored change nothing then (their tasks are terminal, so they are
   * not forwarded twice), and the held one is stored, checked like any other,
   * once its task's row exists.
   */
  private hold(d: Delivery): void {
    const held = d.held ?? { since: Date.now(), tries: 0 };
    d.held = held;
    if (held.tries === 0) {
      this.held.push(d);
      if (this.held.length > MAX_HELD) this.dropOldestHeld();
    }
    const delay = Math.min(FIRST_HOLD_RETRY_MS * 2 ** held.tries, MAX_HOLD_RETRY_MS);
    held.tries++;
    held.timer = setTimeout(() => {
      if (this.stopped || !this.held.includes(d)) return;
      // Past the bound, the next flush drops what still has no row, and acks.
      this.enqueue(d);
    }, delay);
  }

  private unhold(d: Delivery): void {
    clearTimeout(d.held?.timer);
    const index = this.held.indexOf(d);
    if (index >= 0) this.held.splice(index, 1);
  }

  /** Too many held: the oldest is given up now (its unknown results dropped, logged) rather than at its bound. */
  private dropOldestHeld(): void {
    const oldest = this.held.shift() as Delivery;
    clearTimeout(oldest.held?.timer);
    if (oldest.held) oldest.held.since = Number.NEGATIVE_INFINITY;
    this.enqueue(oldest);
  }
}

/** Only the service itself stores `cancelled` (a cancel before the task started). */
const CANCELLED_FROM_ENDPOINT = "state cancelled is not success or failed";

/** False for a result no endpoint may send: `cancelled`. */
function fromEndpoint(m: ResultMessage): m is ResultMessage & { state: "success" | "failed" } {
  return m.state !== "cancelled";
}

type StoredInput = TaskResultInput & { uepId: string; redelivered?: boolean; delivery: Delivery };

/** Adds `result`, as forwarded to its task group `to`, to the messages for that group's queue. */
function addForward(
  forward: Map<string, ResultMessage[]>,
  result: StoredInput,
  to: { taskGroupId: string; highAssurance: boolean },
): void {
  const queue = taskGroupResultQueue(to.taskGroupId);
  let group = forward.get(queue);
  if (!group) {
    group = [];
    forward.set(queue, group);
  }
  const message: ResultMessage = {
    v: 1,
    kind: "result",
    taskId: result.taskId,
    endpointId: result.endpointId,
    uepId: result.uepId,
    taskGroupId: to.taskGroupId,
    state: result.state,
    completedAt: result.completedAt,
  };
  // A High-Assurance result is never pushed: the SDK fetches it over REST, where the policy is checked.
  if (to.highAssurance) message.highAssurance = true;
  else {
    if (result.result) message.result = result.result;
    if (result.error) message.error = result.error;
  }
  group.push(message);
}

function reportKey(taskId: string, sender: string): string {
  return `${taskId.toLowerCase()} ${sender}`;
}

function toResultInput(
  m: ResultMessage & { state: "success" | "failed" },
  from: ReportSender,
): Omit<StoredInput, "delivery"> {
  const input: Omit<StoredInput, "delivery"> = {
    ...from,
    taskId: m.taskId,
    endpointId: m.endpointId,
    uepId: m.uepId,
    state: m.state,
    completedAt: m.completedAt,
  };
  if (m.error) input.error = withoutNul(m.error);
  if (m.result && hasNul(m.result)) {
    input.state = "failed";
    input.error = toWireError(
      new TaskEndedError(
        "RESULT_NOT_STORABLE",
        `The result of task ${m.taskId} contains a NUL character, which the store cannot hold; return it encoded (e.g. base64).`,
      ),
    );
  } else if (m.result) {
    input.result = m.result;
  }
  return input;
}

/** Payload bytes per forwarded message: many small results share one, big ones are not piled into a huge one. */
const MAX_FORWARD_BYTES = 1024 * 1024;

/** Splits results into runs of at most {@link MAX_FORWARD_BYTES} of payload (a bigger result goes alone). */
function chunkBySize(results: ResultMessage[]): ResultMessage[][] {
  const chunks: ResultMessage[][] = [];
  let chunk: ResultMessage[] = [];
  let bytes = 0;
  for (const result of results) {
    const size = 200 + (result.result?.data.length ?? 0) + (result.error ? JSON.stringify(result.error).length : 0);
    if (chunk.length > 0 && bytes + size > MAX_FORWARD_BYTES) {
      chunks.push(chunk);
      chunk = [];
      bytes = 0;
    }
    chunk.push(result);
    bytes += size;
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}

/** Acks on the delivering channel; after a reconnect that channel is gone and the broker redelivers. */
function settle(channel: ConfirmChannel, raw: ConsumeMessage): void {
  try {
    channel.ack(raw);
  } catch {
    // channel closed
  }
}
