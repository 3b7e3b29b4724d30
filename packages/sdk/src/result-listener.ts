/**
 * Receives an Executor's results: the service pushes each task group's results
 * to its own durable queue (`tg.<group>.results`), and this consumes those
 * queues over one broker link, opened at the first submit response (whose
 * `amqp.url` says where the broker is). The link reconnects by itself; `setup`
 * then consumes every known queue again on the new channel. A message holds
 * one result (`result`) or several (`results`, how the service forwards them).
 */
import {
  type BrokerLink,
  type ConfirmChannel,
  type ConsumeMessage,
  connectBroker,
  decodeMessage,
  QUEUE_OPTIONS,
  type ResultMessage,
} from "@conduit/protocol";

/**
 * Retries of the first broker connection (~3 s with the link's backoff from 100 ms):
 * the futures should fail rather than hang when the broker is unreachable.
 */
const INITIAL_CONNECT_RETRIES = 5;

export class ResultListener {
  private link: Promise<BrokerLink> | undefined;
  private closed = false;
  private readonly queues = new Set<string>();
  /** Queues already consumed on each channel, so a queue added during a reconnect is not consumed twice. */
  private readonly consumed = new WeakMap<ConfirmChannel, Set<string>>();

  /**
   * @param onResult gets every decoded result; it must tolerate unknown and repeated
   * task ids (a delivery not acked before a reconnect comes again).
   */
  constructor(private readonly onResult: (result: ResultMessage) => void) {}

  /** Consumes `queue`, connecting to the broker at `url` on first use; rejects if the broker is unreachable. */
  async listen(url: string, queue: string): Promise<void> {
    if (this.closed) return;
    this.queues.add(queue);
    if (!this.link) {
      const link = connectBroker(url, {
        name: "conduit-sdk",
        initialMaxRetries: INITIAL_CONNECT_RETRIES,
        setup: (channel) => this.setup(channel),
      });
      this.link = link;
      // The next submit response tries again.
      link.catch(() => {
        if (this.link === link) this.link = undefined;
      });
    }
    const link = await this.link;
    const channel = link.channel;
    // Without a channel the link is reconnecting, and its setup will consume the queue.
    if (channel) await this.consume(channel, queue);
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

  private async setup(channel: ConfirmChannel): Promise<void> {
    for (const queue of [...this.queues]) await this.consume(channel, queue);
  }

  private async consume(channel: ConfirmChannel, queue: string): Promise<void> {
    let seen = this.consumed.get(channel);
    if (!seen) {
      seen = new Set();
      this.consumed.set(channel, seen);
    }
    if (seen.has(queue)) return;
    seen.add(queue);
    // The service declares it too; asserting here makes the order of the two irrelevant.
    await channel.assertQueue(queue, QUEUE_OPTIONS);
    await channel.consume(queue, (message) => this.deliver(channel, message));
  }

  private deliver(channel: ConfirmChannel, message: ConsumeMessage | null): void {
    // null: the broker cancelled the consumer (the queue was deleted); nothing more will come.
    if (!message) return;
    let results: ResultMessage[] = [];
    try {
      const decoded = decodeMessage(message.content, "result", "results");
      if (decoded.kind === "result") results = [decoded];
      else if (Array.isArray(decoded.results)) results = decoded.results;
      else throw new Error("its results field is not a list");
    } catch (err) {
      process.emitWarning(`Dropped a malformed message from the results queue: ${(err as Error).message}`);
    }
    // Settle before acking: the future's state lives in this process, and a result that
    // cannot be matched (unknown or settled task) is acked and dropped.
    for (const result of results) {
      if (typeof result === "object" && result !== null) this.onResult(result);
    }
    try {
      channel.ack(message);
    } catch {
      // The channel closed under us; the broker redelivers and onResult drops the repeat.
    }
  }
}
