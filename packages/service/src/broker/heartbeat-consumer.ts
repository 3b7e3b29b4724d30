/**
 * Consumes {@link HEARTBEATS_QUEUE}: MEP heartbeats set an endpoint's liveness
 * (`period: 0` = shutting down), UEP heartbeats its last_seen; a heartbeat
 * carrying an error (e.g. a UEP whose template did not render) is logged and
 * kept as the endpoint's last error. With scoped broker accounts, UEP
 * heartbeats also go to a {@link UepHeartbeatListener} (which deletes the
 * accounts of UEPs that stopped), before the store records them. Heartbeats are
 * few; each is handled as it comes and acked after the store saw it (or after
 * it was found malformed).
 */
import {
  ConduitError,
  type ConfirmChannel,
  type ConsumeMessage,
  decodeMessage,
  HEARTBEATS_QUEUE,
  type HeartbeatMessage,
} from "@conduit/protocol";
import type { FastifyBaseLogger } from "fastify";
import type { Store } from "../store/store.js";
import type { UepHeartbeatListener } from "./broker-account-sweeper.js";
import { heartbeatProblem, withoutNul } from "./message-checks.js";
import type { BrokerConsumer } from "./service-broker.js";

export class HeartbeatConsumer implements BrokerConsumer {
  private consumer: { channel: ConfirmChannel; tag: string } | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly logger: FastifyBaseLogger,
    private readonly uepListener?: UepHeartbeatListener,
  ) {}

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
      const problem = heartbeatProblem(beat);
      if (problem) throw new ConduitError("BAD_MESSAGE", `Broker message heartbeat: ${problem}; it was dropped.`);
    } catch (err) {
      this.logger.warn({ err, routingKey: raw.fields.routingKey }, (err as Error).message);
      return;
    }
    const error = beat.error && withoutNul(beat.error);
    const who =
      beat.role === "mep" ? `endpoint ${beat.endpointId}` : `UEP ${beat.uepId} of endpoint ${beat.endpointId}`;
    if (error) this.logger.warn({ error }, `Heartbeat of ${who} reports an error: ${error.code}: ${error.message}`);
    if (beat.role === "uep" && this.uepListener) {
      try {
        await this.uepListener.uepHeartbeat(
          { ...beat, uepId: beat.uepId! },
          raw.properties.userId as string | undefined,
        );
      } catch (err) {
        // The account stays; the silent-UEP check deletes it once the heartbeats are missing.
        this.logger.warn({ err }, `Could not act on the heartbeat of ${who} for its broker account.`);
      }
    }
    try {
      const known =
        beat.role === "mep"
          ? await this.store.recordEndpointHeartbeat(beat.endpointId, beat.period, error)
          : await this.store.recordUepHeartbeat(beat.endpointId, beat.uepId!, error);
      if (!known) this.logger.warn(`Heartbeat of unknown ${who} was dropped.`);
    } catch (err) {
      // A missed heartbeat only delays a status change; the next one comes within a period.
      this.logger.error({ err }, `Could not store the heartbeat of ${who}.`);
    }
  }
}
