/**
 * Declares task group result queues, with {@link taskGroupQueueOptions}, on a
 * connection of their own. A group queue declared by a service that ran with
 * another `--result-retention` refuses the new `x-expires` with a channel
 * error (406 PRECONDITION_FAILED); on the service's shared channel that would
 * stall every consumer and publisher, so each declaration gets a throwaway
 * channel here, and such a queue is kept as it is (its own expiry applies).
 */
import {
  ConduitError,
  directQueueSpec,
  type QueueType,
  queueMismatchError,
  redactUrl,
  taskGroupQueueOptions,
} from "@conduit/protocol";
import amqp, { type Channel, type ChannelModel } from "amqplib";
import type { FastifyBaseLogger } from "fastify";

/** AMQP reply code of a queue that exists with other arguments. */
const PRECONDITION_FAILED = 406;

export class GroupQueueDeclarer {
  private model: Promise<ChannelModel> | undefined;
  private warnedAboutRetention = false;

  constructor(
    private readonly url: string,
    private readonly retentionMs: number,
    private readonly logger: FastifyBaseLogger,
    private readonly queueType: QueueType = "classic",
  ) {}

  /** Declares the queue (or finds it declared with another retention) and binds it, as the topology table says. */
  async declare(queue: string): Promise<void> {
    const spec = directQueueSpec(queue, taskGroupQueueOptions(this.retentionMs, this.queueType));
    let channel = await this.channel();
    try {
      try {
        await channel.assertQueue(queue, spec.options);
      } catch (err) {
        if ((err as { code?: number }).code !== PRECONDITION_FAILED) throw err;
        // Another queue type is not kept: that is a service started with another --amqp-queue-type.
        const mismatch = queueMismatchError(err, spec);
        if (mismatch && /x-queue-type/.test((err as Error).message)) throw mismatch;
        // The refusal closed that channel; the queue exists, so a passive check on a new one passes.
        channel = await this.channel();
        await channel.checkQueue(queue);
        if (!this.warnedAboutRetention) {
          this.warnedAboutRetention = true;
          this.logger.warn(
            `Task group queue ${queue} was declared with another result retention; such queues keep theirs, new groups get ${this.retentionMs} ms.`,
          );
        }
      }
      for (const { exchange, pattern } of spec.bindings) await channel.bindQueue(queue, exchange, pattern);
    } finally {
      await channel.close().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    const model = this.model;
    this.model = undefined;
    if (model) await (await model.catch(() => undefined))?.close().catch(() => undefined);
  }

  private async channel(): Promise<Channel> {
    if (!this.model) {
      const connecting = amqp.connect(this.url, {
        noDelay: true,
        clientProperties: { connection_name: "conduit-service (group queues)" },
      });
      this.model = connecting;
      // Connected again by the next declaration after a loss or a failed attempt.
      const forget = () => {
        if (this.model === connecting) this.model = undefined;
      };
      connecting.then((model) => {
        model.on("error", () => undefined);
        model.on("close", forget);
      }, forget);
    }
    try {
      const channel = await (await this.model).createChannel();
      // A refused declaration closes the channel with an error; the caller handles it from the rejected call.
      channel.on("error", () => undefined);
      return channel;
    } catch (err) {
      throw new ConduitError(
        "BROKER_UNREACHABLE",
        `Cannot open a channel to RabbitMQ at ${redactUrl(this.url)} to declare a task group queue (${(err as Error).message}); check that RabbitMQ is up, then submit again.`,
        { cause: err },
      );
    }
  }
}
