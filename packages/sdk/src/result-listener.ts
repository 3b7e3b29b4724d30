/**
 * Receives an Executor's results: the service pushes each task group's results
 * to its own durable queue (`tg.<group>.results`), and this consumes those
 * queues over one broker link, opened at the first submit response (whose
 * `amqp.url` says where the broker is). The link reconnects by itself; `setup`
 * then consumes every known queue again on the new channel. A message holds
 * one result (`result`) or several (`results`, how the service forwards them).
 *
 * The service owns the group queues (it declares them, with an expiry, and the
 * SDK's broker account may only read them), so they are checked, never declared.
 * A message counts only when its `user-id` (checked by RabbitMQ against the
 * publishing connection's user) is the service's broker user; any other is
 * acked and dropped, with a warning at most once a minute per account.
 */
import {
  type AmqpInfo,
  type BrokerLink,
  ConduitError,
  type ConfirmChannel,
  type ConsumeMessage,
  connectBroker,
  decodeMessageKeepingGoodResults,
  RefusedSenders,
  type ResultMessage,
  senderOf,
} from "@conduit/protocol";

/**
 * Retries of the first broker connection (~3 s with the link's backoff from 100 ms):
 * the futures should fail rather than hang when the broker is unreachable.
 */
const INITIAL_CONNECT_RETRIES = 5;
/** Unacked result messages the broker may push ahead of the acks. */
const PREFETCH = 500;
/** Task ids remembered as delivered, to drop repeats after a reconnect; the oldest are forgotten first. */
const DELIVERED_MEMORY = 100_000;

export interface ListenerOptions {
  /** Replaces the port of every AMQP URL (a tunnel or proxy in front of the broker). */
  amqpPort?: number;
}

/**
 * Gets each message's results that were not delivered before, in order, and
 * the queue they came from; called once per message (with `[]` for a message
 * that held nothing new), before the message is acked.
 */
export type ResultHandler = (results: ResultMessage[], queue: string) => void;

export class ResultListener {
  private link: Promise<BrokerLink> | undefined;
  private closed = false;
  /** Every queue consumed (or being started), with the start's outcome. */
  private readonly queues = new Map<string, Promise<number>>();
  /** Queues consumed on each channel (with the count of messages that waited), so none is consumed twice. */
  private readonly consumed = new WeakMap<ConfirmChannel, Map<string, Promise<number>>>();
  private readonly delivered = new BoundedSet(DELIVERED_MEMORY);
  /** Per queue, the service's broker user: the only sender its messages are taken from. */
  private readonly serviceUsers = new Map<string, string>();
  private readonly refused = new RefusedSenders((line) => process.emitWarning(line));

  constructor(
    private readonly onResults: ResultHandler,
    private readonly options: ListenerOptions = {},
  ) {}

  /** True once `queue` is being consumed (or will be again after a reconnect). */
  has(queue: string): boolean {
    return this.queues.has(queue);
  }

  /**
   * Consumes `queue`, connecting to the broker at `amqp.url` on first use, and
   * takes its messages only from `amqp.serviceUser`; rejects if
   * the broker is unreachable or the queue does not exist (every caller for the
   * queue alike, until one succeeds). Resolves with the number of messages that
   * were waiting in the queue when this started consuming it (they are the
   * first to arrive) for the first caller, and 0 for the others.
   */
  async listen(amqp: AmqpInfo, queue: string): Promise<number> {
    if (this.closed) return 0;
    this.serviceUsers.set(queue, amqp.serviceUser);
    const known = this.queues.get(queue);
    if (known) {
      await known;
      return 0;
    }
    const started = this.start(amqp.url, queue);
    this.queues.set(queue, started);
    // The next submit response tries again.
    started.catch(() => {
      if (this.queues.get(queue) === started) this.queues.delete(queue);
    });
    return started;
  }

  async close(): Promise<void> {
    this.closed = true;
    const link = await this.link?.catch(() => undefined);
    if (!link) return;
    // Close the channel first: its close travels behind the acks already sent on it, so the
    // broker has them all before the connection goes (a bare connection close can overtake them
    // and leave settled results to be redelivered).
    try {
      await link.channel?.close();
    } catch {
      // already closed
    }
    await link.close();
  }

  private async start(url: string, queue: string): Promise<number> {
    if (!this.link) {
      const link = connectBroker(this.brokerUrl(url), {
        name: "conduit-sdk",
        prefetch: PREFETCH,
        initialMaxRetries: INITIAL_CONNECT_RETRIES,
        setup: async (channel, link) => {
          for (const known of [...this.queues.keys()]) {
            try {
              await this.consume(channel, link, known);
            } catch (err) {
              // Expired while the link was down; the other queues go on.
              process.emitWarning((err as Error).message);
            }
          }
        },
      });
      this.link = link;
      link.catch(() => {
        if (this.link === link) this.link = undefined;
      });
    }
    const link = await this.link;
    // Without a channel the link is reconnecting, and its setup will consume the queue.
    const channel = link.channel;
    return channel ? await this.consume(channel, link, queue) : 0;
  }

  private brokerUrl(url: string): string {
    if (this.options.amqpPort === undefined) return url;
    const parsed = new URL(url);
    parsed.port = String(this.options.amqpPort);
    return parsed.toString();
  }

  /**
   * Consumes `queue` on `channel` once (the link's setup and {@link start} may
   * both ask for it); every caller gets the number of messages that waited.
   */
  private consume(channel: ConfirmChannel, link: BrokerLink, queue: string): Promise<number> {
    let started = this.consumed.get(channel);
    if (!started) {
      started = new Map();
      this.consumed.set(channel, started);
    }
    let count = started.get(queue);
    if (!count) {
      count = this.startConsuming(channel, link, queue);
      started.set(queue, count);
      const forget = started;
      count.catch(() => forget.delete(queue));
    }
    return count;
  }

  private async startConsuming(channel: ConfirmChannel, link: BrokerLink, queue: string): Promise<number> {
    // Checked on a channel of its own: a missing queue closes the channel that asks.
    const info = await link.checkQueue(queue);
    if (!info) {
      throw new ConduitError(
        "RESULT_QUEUE_MISSING",
        `The result queue ${queue} does not exist (its task group went unused for longer than the service's --result-retention, or the task group id is wrong); fetch results with client.getResult(taskId), or submit to a new task group.`,
      );
    }
    await channel.consume(queue, (message) => this.deliver(channel, queue, message));
    return info.messageCount;
  }

  private deliver(channel: ConfirmChannel, queue: string, message: ConsumeMessage | null): void {
    // null: the broker cancelled the consumer (the queue was deleted or expired); nothing more will come.
    if (!message) return;
    let results: ResultMessage[] = [];
    const sender = senderOf(message);
    const serviceUser = this.serviceUsers.get(queue);
    if (sender !== serviceUser) {
      this.refused.refuse(sender, `a message in ${queue}: only the service (${serviceUser}) may send results`);
    } else {
      results = this.decode(message);
    }
    const fresh = results.filter((result) => this.delivered.add(result.taskId));
    // Settle before acking: the future's state lives in this process, and a result that
    // cannot be matched (unknown or settled task) is acked and dropped.
    this.onResults(fresh, queue);
    try {
      channel.ack(message);
    } catch {
      // The channel closed under us; the broker redelivers and the repeat is dropped above.
    }
  }

  /** The results a message holds; none (with a warning) when it is malformed, and each malformed item left out (with one). */
  private decode(message: ConsumeMessage): ResultMessage[] {
    const dropped = (err: Error) =>
      process.emitWarning(`Dropped a malformed message from the results queue: ${err.message}`);
    try {
      const decoded = decodeMessageKeepingGoodResults(message.content, ["result", "results"], dropped);
      return decoded.kind === "result" ? [decoded] : decoded.results;
    } catch (err) {
      dropped(err as Error);
      return [];
    }
  }
}

/** A set that forgets its oldest members beyond `capacity`. */
class BoundedSet {
  private readonly members = new Set<string>();

  constructor(private readonly capacity: number) {}

  /** Adds `value`; false if it was there already. */
  add(value: string): boolean {
    if (this.members.has(value)) return false;
    this.members.add(value);
    if (this.members.size > this.capacity) {
      const oldest = this.members.values().next().value;
      if (oldest !== undefined) this.members.delete(oldest);
    }
    return true;
  }
}
