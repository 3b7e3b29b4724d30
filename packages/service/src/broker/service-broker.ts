/**
 * The service's one broker connection: declares the topology, (re)attaches the
 * consumers after every reconnect, declares task/command/result queues on
 * demand (remembering what it declared), and publishes batches with confirms.
 */
import {
  type BrokerLink,
  type BrokerMessage,
  type ConfirmChannel,
  coalesceWrites,
  connectBroker,
  declareQueue,
  declareTopology,
  directQueueSpec,
  type QueueType,
  queueOptions,
  TASKS_EXCHANGE,
} from "@conduit/protocol";
import type { FastifyBaseLogger } from "fastify";
import { GroupQueueDeclarer } from "./group-queue-declarer.js";
import { batchTaskMessages, type TaskBatchLimits } from "./task-batches.js";

/** Something that consumes on the service's channel; attached again after each reconnect. */
export interface BrokerConsumer {
  attach(channel: ConfirmChannel): Promise<void>;
  /** Stops taking deliveries and settles the ones in hand. */
  stop(): Promise<void>;
}

/** A message for a queue bound to {@link TASKS_EXCHANGE} under its own name. */
export interface Outgoing {
  queue: string;
  message: BrokerMessage;
  /** The REST request that caused it, sent as the message's correlation-id (the MEP and UEP log it). */
  requestId?: string;
}

export interface ServiceBrokerOptions {
  url: string;
  logger: FastifyBaseLogger;
  /** Unacked deliveries per consumer; at least the result batch size. */
  prefetch: number;
  /** Attempts for the first connection before start fails. */
  initialMaxRetries: number;
  /** How long an unused task group result queue is kept (its `x-expires`), in ms. */
  resultRetentionMs: number;
  /** How the tasks of one publish are grouped per UEP queue (see {@link batchTaskMessages}). */
  taskBatch?: TaskBatchLimits;
  /** Type of every queue the service declares (`--amqp-queue-type`). @default "classic" */
  queueType?: QueueType;
}

/** Names made by `taskGroupResultQueue()`: declared by a {@link GroupQueueDeclarer}. */
const TASK_GROUP_QUEUE = /^tg\.[^.]+\.results$/;

export class ServiceBroker {
  private link: BrokerLink | undefined;
  private readonly consumers: BrokerConsumer[] = [];
  /** Queues declared and bound on the current connection (cleared on reconnect). */
  private declared = new Map<string, Promise<void>>();

  private constructor(
    private readonly groupQueues: GroupQueueDeclarer,
    private readonly taskBatch: TaskBatchLimits,
    private readonly queueType: QueueType,
  ) {}

  static async connect(options: ServiceBrokerOptions): Promise<ServiceBroker> {
    const queueType = options.queueType ?? "classic";
    const broker = new ServiceBroker(
      new GroupQueueDeclarer(options.url, options.resultRetentionMs, options.logger, queueType),
      options.taskBatch ?? {},
      queueType,
    );
    const { logger } = options;
    broker.link = await connectBroker(options.url, {
      name: "conduit-service",
      prefetch: options.prefetch,
      initialMaxRetries: options.initialMaxRetries,
      setup: async (channel) => {
        coalesceWrites(channel);
        // Every exchange and shared queue of the protocol's topology table.
        await declareTopology(channel, queueType);
        broker.declared = new Map();
        for (const consumer of broker.consumers) await consumer.attach(channel);
      },
    });
    broker.link.on("disconnect", (err: Error) =>
      logger.warn(`Lost the broker connection (${err?.message ?? "closed"}); reconnecting.`),
    );
    broker.link.on("connect", () => logger.info("Connected to the broker."));
    broker.link.on("channel-error", (err: Error) => logger.error({ err }, "Broker channel error."));
    broker.link.on("failed", (err: Error) =>
      logger.error({ err }, "Gave up reconnecting to the broker; restart the service once RabbitMQ is back."),
    );
    return broker;
  }

  /** Attaches a consumer now and after every reconnect. */
  async addConsumer(consumer: BrokerConsumer): Promise<void> {
    this.consumers.push(consumer);
    await consumer.attach(await this.requireLink().ready());
  }

  /** The RabbitMQ user the service publishes as (every message's `user-id`; endpoints and SDKs accept only it). */
  get user(): string {
    return this.requireLink().user;
  }

  /** The live channel, if connected (for acks: a delivery is acked on the channel it came on). */
  get channel(): ConfirmChannel | undefined {
    return this.link?.channel;
  }

  /**
   * Makes sure each queue exists and is bound to {@link TASKS_EXCHANGE} under
   * its own name. Remembered per connection, so the hot path declares a queue
   * once, not once per submit; `force` declares again (for a task group queue,
   * that also restarts its expiry clock).
   */
  async ensureQueues(queues: Iterable<string>, force = false): Promise<void> {
    const pending: Array<Promise<void>> = [];
    for (const queue of queues) {
      let declared = force ? undefined : this.declared.get(queue);
      if (!declared) {
        declared = this.declareQueue(queue);
        this.declared.set(queue, declared);
        // A failed declaration is retried by the next caller.
        declared.catch(() => {
          if (this.declared.get(queue) === declared) this.declared.delete(queue);
        });
      }
      pending.push(declared);
    }
    await Promise.all(pending);
  }

  private async declareQueue(queue: string): Promise<void> {
    // Only the service declares group queues (SDKs check them passively), with the retention as x-expires.
    if (TASK_GROUP_QUEUE.test(queue)) return this.groupQueues.declare(queue);
    await declareQueue(await this.requireLink().ready(), directQueueSpec(queue, queueOptions(this.queueType)));
  }

  /**
   * Publishes persistent messages and resolves once the broker confirmed all
   * of them. The task messages among them travel in batches, one `tasks`
   * message per UEP queue and batch (see {@link batchTaskMessages}).
   */
  async publishAll(messages: readonly Outgoing[]): Promise<void> {
    const link = this.requireLink();
    await Promise.all(
      batchTaskMessages(messages, this.taskBatch).map((m) =>
        link.publish(TASKS_EXCHANGE, m.queue, m.message, m.requestId ? { correlationId: m.requestId } : {}),
      ),
    );
  }

  /** Stops the consumers (settling what they hold); publishing still works. */
  async stopConsumers(): Promise<void> {
    await Promise.all(this.consumers.map((c) => c.stop()));
  }

  async close(): Promise<void> {
    await this.groupQueues.close();
    await this.link?.close();
  }

  private requireLink(): BrokerLink {
    if (!this.link) throw new Error("The broker is not connected yet.");
    return this.link;
  }
}
