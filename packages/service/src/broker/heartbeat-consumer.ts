/**
 * Consumes {@link HEARTBEATS_QUEUE}: MEP heartbeats set an endpoint's liveness
 * (`period: 0` = shutting down), UEP heartbeats its last_seen; a heartbeat
 * carrying an error (e.g. a UEP whose template did not render) is logged and
 * kept as the endpoint's last error. With scoped broker accounts, UEP
 * heartbeats also go to a {@link UepHeartbeatListener} (which deletes the
 * accounts of UEPs that stopped), before the store records them. Heartbeats are
 * few; each is handled as it comes and acked after the store saw it (or after
 * it was found malformed).
 *
 * A heartbeat counts only from the account of the MEP or UEP it names (its
 * `user-id`, which RabbitMQ checks against the publishing connection's user),
 * and under that endpoint's routing key; any other is acked, dropped and
 * logged at most once a minute per account.
 */
import {
  type ConfirmChannel,
  type ConsumeMessage,
  decodeMessage,
  endpointBrokerUser,
  HEARTBEATS_QUEUE,
  type HeartbeatMessage,
  RefusedSenders,
  routingKeyEndpoint,
  senderOf,
  uepBrokerUser,
} from "@conduit/protocol";
import type { FastifyBaseLogger } from "fastify";
import type { Store } from "../store/store.js";
import type { UepHeartbeatListener } from "./broker-account-sweeper.js";
import { withoutNul } from "./message-checks.js";
import type { BrokerConsumer } from "./service-broker.js";

export class HeartbeatConsumer implements BrokerConsumer {
  private consumer: { channel: ConfirmChannel; tag: string } | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private stopped = false;
  private readonly refused: RefusedSenders;

  /**
   * @param sharedAccounts with `--shared-broker-account`, the accounts every
   * endpoint and UEP shares, which may send any heartbeat; unset (scoped
   * accounts), a heartbeat counts only from the account of the MEP or UEP it names
   */
  constructor(
    private readonly store: Store,
    private readonly logger: FastifyBaseLogger,
    private readonly uepListener?: UepHeartbeatListener,
    private readonly sharedAccounts?: ReadonlySet<string>,
  ) {
    this.refused = new RefusedSenders((line) => logger.warn(line));
  }

  async attach(channel: ConfirmChannel): Promise<void> {
    if (this.stopped) return;
    const { consumerTag } = await channel.consume(HEARTBEATS_QUEUE, (raw) => {
      if (!raw) return;
      const work = this.handle(raw)
        .catch((err: unknown) => this.logger.error({ err }, "Heartbeat handling failed."))
        .finally(() => {
          this.inFlight.delete(work);
          try {
            channel.ack(raw);
          } catch {
            // channel closed: the broker redelivers
          }
        });
      this.inFlight.add(work);
    });
    this.consumer = { channel, tag: consumerTag };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const consumer = this.consumer;
    this.consumer = undefined;
    if (consumer) await consumer.channel.cancel(consumer.tag).catch(() => undefined);
    await Promise.all(this.inFlight);
  }

  private async handle(raw: ConsumeMessage): Promise<void> {
    let beat: HeartbeatMessage;
    try {
      beat = decodeMessage(raw.content, "heartbeat");
    } catch (err) {
      this.logger.warn({ err, routingKey: raw.fields.routingKey }, (err as Error).message);
      return;
    }
    const who =
      beat.role === "mep" ? `endpoint ${beat.endpointId}` : `UEP ${beat.uepId} of endpoint ${beat.endpointId}`;
    const refusal = this.refusal(beat, raw);
    if (refusal) {
      this.refused.refuse(senderOf(raw), `a heartbeat of ${who}: ${refusal}`);
      return;
    }
    const error = beat.error && withoutNul(beat.error);
    if (error) this.logger.warn({ error }, `Heartbeat of ${who} reports an error: ${error.code}: ${error.message}`);
    if (beat.role === "uep" && this.uepListener) {
      try {
        await this.uepListener.uepHeartbeat({ ...beat, uepId: beat.uepId! }, senderOf(raw));
      } catch (err) {
        // The account stays; the silent-UEP check deletes it once the heartbeats are missing.
        this.logger.warn({ err }, `Could not act on the heartbeat of ${who} for its broker account.`);
      }
    }
    try {
      const known =
        beat.role === "mep"
          ? await this.store.recordEndpointHeartbeat(beat.endpointId, beat.period, error)
          : await this.store.recordUepHeartbeat(beat.endpointId, beat.uepId!, error, beat.engine);
      if (!known) this.logger.warn(`Heartbeat of unknown ${who} was dropped.`);
    } catch (err) {
      // A missed heartbeat only delays a status change; the next one comes within a period.
      this.logger.error({ err }, `Could not store the heartbeat of ${who}.`);
    }
  }

  /** Why `beat` does not count, or undefined when it comes from the account it names. */
  private refusal(beat: HeartbeatMessage, raw: ConsumeMessage): string | undefined {
    const sender = senderOf(raw);
    if (sender === undefined) return "it has no user-id";
    const keyEndpoint = routingKeyEndpoint(raw.fields.routingKey);
    if (beat.endpointId.toLowerCase() !== keyEndpoint.toLowerCase()) {
      return `it came under the routing key of endpoint ${keyEndpoint}`;
    }
    if (this.sharedAccounts) return this.sharedAccounts.has(sender) ? undefined : "not the shared broker account";
    const own =
      beat.role === "mep"
        ? endpointBrokerUser(beat.endpointId.toLowerCase())
        : uepBrokerUser(beat.uepId!.toLowerCase());
    return sender === own ? undefined : `only ${own} may send it`;
  }
}
