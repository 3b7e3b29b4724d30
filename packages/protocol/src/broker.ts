/**
 * One AMQP connection with recovery, shared by the service, the endpoint and
 * the SDK. Every socket sets `noDelay` (amqplib leaves Nagle on, which turns a
 * 0.3 ms broker round trip into ~40 ms). After a reconnect `setup` runs again
 * on a fresh confirm channel, so consumers and topology come back by themselves;
 * deliveries of the old channel are redelivered by the broker, so consumers
 * must be idempotent.
 */
import { EventEmitter } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import type { ChannelModel, ConfirmChannel, Options, RecoveringChannelModel } from "amqplib";
import { ConduitError } from "./errors.js";
import { type BrokerMessage, encodeMessage } from "./messages.js";

export interface BrokerOptions {
  /** Shown in the broker's connection list. */
  name: string;
  /** Runs on every (re)connection with a fresh confirm channel: declare, bind, consume. */
  setup?: (channel: ConfirmChannel, link: BrokerLink) => Promise<void>;
  /** Unacked deliveries per consumer channel. @default 200 */
  prefetch?: number;
  /** AMQP heartbeat in seconds (0 disables). @default the broker's suggestion */
  heartbeat?: number;
  /** Reconnect attempts before giving up (the first connection too). @default Infinity */
  maxRetries?: number;
  /** Attempts for the first connection. @default maxRetries */
  initialMaxRetries?: number;
  /** Largest reconnect delay in ms. @default 5000 */
  maxDelay?: number;
}

/**
 * Events: `connect` (channel), `disconnect`, `channel-error`, `connection-error`,
 * and `failed` once the link gives up for good: reconnect attempts exhausted,
 * or a reconnect whose login was refused (a ConduitError with code
 * `BROKER_ACCOUNT_REFUSED`: the account was deleted, e.g. when its identity was
 * removed; see {@link isAccountRefused}).
 */
export interface BrokerLink extends EventEmitter {
  /**
   * The RabbitMQ user this link logs in as. Every publish carries it as the
   * `user-id` property, which RabbitMQ checks against the connection's user:
   * consumers take it as proof of who sent a message.
   */
  readonly user: string;
  /** The live channel, or undefined while reconnecting. */
  readonly channel: ConfirmChannel | undefined;
  /**
   * Publishes a persistent message, stamped with `user-id` {@link user}, and
   * resolves once the broker confirmed it.
   * While the connection is down it waits for the next one; a publish lost with
   * a dropped channel is sent again (consumers dedupe by id).
   */
  publish(
    exchange: string,
    routingKey: string,
    message: BrokerMessage | Buffer,
    options?: Options.Publish,
  ): Promise<void>;
  /** Resolves with the channel once connected. */
  ready(): Promise<ConfirmChannel>;
  /**
   * Passive check of a queue on a short-lived channel of its own, so that a
   * missing queue (which closes the channel that asked) leaves the link's
   * channel alone; undefined when the queue does not exist.
   */
  checkQueue(queue: string): Promise<{ messageCount: number; consumerCount: number } | undefined>;
  close(): Promise<void>;
}

/** Whether a `failed` error of a BrokerLink means the broker no longer accepts the link's account. */
export function isAccountRefused(err: unknown): boolean {
  return err instanceof ConduitError && err.code === "BROKER_ACCOUNT_REFUSED";
}

/** The user an AMQP URL logs in as (amqplib logs in as `guest` when the URL names none). */
export function brokerUser(url: string): string {
  return decodeURIComponent(new URL(url).username) || "guest";
}

/** Redacts the password of an AMQP URL for logs and errors. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]*):[^@]*@/, "//$1:***@");
}

class RecoveringBroker extends EventEmitter implements BrokerLink {
  channel: ConfirmChannel | undefined;
  readonly user: string;
  private closed = false;
  private waiters: Array<{ resolve: (ch: ConfirmChannel) => void; reject: (err: Error) => void }> = [];
  private model: RecoveringChannelModel | undefined;
  /** The connection of the current channel (set before `setup` runs). */
  private liveModel: ChannelModel | undefined;
  private failure: Error | undefined;

  constructor(
    private readonly url: string,
    private readonly options: BrokerOptions,
  ) {
    super();
    this.user = brokerUser(url);
  }

  async open(): Promise<void> {
    const { name, heartbeat, maxRetries, initialMaxRetries, maxDelay = 5000, prefetch = 200, setup } = this.options;
    const connectOptions: Options.Connect | string =
      heartbeat === undefined ? this.url : withHeartbeat(this.url, heartbeat);
    try {
      // Loaded at the first connect, not with this module: a block manager and its workers import the wire
      // entry (errors, serialization) but never connect, and a new UEP starts its engine before it connects.
      const { default: amqp } = await import("amqplib");
      this.model = await amqp.connect(connectOptions, {
        noDelay: true,
        clientProperties: { connection_name: name },
        recovery: {
          initialDelay: 100,
          maxDelay,
          maxRetries: maxRetries ?? Number.POSITIVE_INFINITY,
          initialMaxRetries: initialMaxRetries ?? maxRetries ?? Number.POSITIVE_INFINITY,
          setup: async (model: ChannelModel) => {
            this.liveModel = model;
            const channel = await model.createConfirmChannel();
            channel.on("error", (err: Error) => this.emit("channel-error", err));
            channel.on("close", () => {
              if (this.channel === channel) this.channel = undefined;
            });
            await channel.prefetch(prefetch);
            if (setup) await setup(channel, this);
            this.channel = channel;
            const waiters = this.waiters.splice(0);
            for (const w of waiters) w.resolve(channel);
            this.emit("connect", channel);
          },
        },
      });
    } catch (err) {
      throw new ConduitError(
        "BROKER_UNREACHABLE",
        `Cannot connect to RabbitMQ at ${redactUrl(this.url)} (${(err as Error).message}); start it (rabbitmq-server -detached) or pass the right AMQP URL.`,
        { cause: err },
      );
    }
    const model = this.model;
    model.on("disconnect", (err: Error) => {
      this.channel = undefined;
      this.emit("disconnect", err);
    });
    model.on("error", (err: Error) => this.emit("connection-error", err));
    model.on("reconnect-failed", (err: Error) => this.fail(err));
    // Once connected, a login refusal is no outage: the account was deleted (or its password changed),
    // and retrying forever would hide that. Recovery stops and `failed` carries BROKER_ACCOUNT_REFUSED.
    model.on("connect-failed", (err: Error) => {
      if (this.closed || !isAccessRefused(err)) return;
      const user = brokerUser(this.url);
      this.fail(
        new ConduitError(
          "BROKER_ACCOUNT_REFUSED",
          `RabbitMQ at ${redactUrl(this.url)} no longer accepts the account ${user} (${err.message}); it was deleted or its password changed.`,
          { cause: err },
        ),
      );
      model.close().catch(() => undefined);
    });
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    for (const w of this.waiters.splice(0)) w.reject(err);
    this.emit("failed", err);
  }

  ready(): Promise<ConfirmChannel> {
    if (this.channel) return Promise.resolve(this.channel);
    if (this.closed) return Promise.reject(new ConduitError("BROKER_CLOSED", "The broker connection is closed."));
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  async checkQueue(queue: string): Promise<{ messageCount: number; consumerCount: number } | undefined> {
    // Not ready(): setup calls this before the link's channel exists.
    const model = this.liveModel;
    if (!model || this.closed) throw new ConduitError("BROKER_CLOSED", "The broker connection is closed.");
    const channel = await model.createChannel();
    channel.on("error", () => undefined);
    try {
      const { messageCount, consumerCount } = await channel.checkQueue(queue);
      return { messageCount, consumerCount };
    } catch (err) {
      if ((err as { code?: number }).code === 404) return undefined;
      throw err;
    } finally {
      await channel.close().catch(() => undefined);
    }
  }

  async publish(
    exchange: string,
    routingKey: string,
    message: BrokerMessage | Buffer,
    options: Options.Publish = {},
  ): Promise<void> {
    const content = Buffer.isBuffer(message) ? message : encodeMessage(message);
    for (;;) {
      const channel = await this.ready();
      try {
        await new Promise<void>((resolve, reject) => {
          channel.publish(
            exchange,
            routingKey,
            content,
            // user-id last: RabbitMQ refuses any other than the connection's user anyway.
            { persistent: true, contentType: "application/json", ...options, userId: this.user },
            (err) => (err ? reject(err) : resolve()),
          );
        });
        return;
      } catch (err) {
        // A nack or a channel that closed under us: retry on the next channel,
        // unless the link itself is closed.
        if (this.closed) throw err;
        if (this.channel === channel) await sleep(50);
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiters.splice(0))
      w.reject(new ConduitError("BROKER_CLOSED", "The broker connection is closed."));
    try {
      await this.model?.close();
    } catch {
      // already gone
    }
  }
}

/**
 * A login the broker refused (403 in the handshake), as opposed to a broker
 * that is away or a 403 on one queue in `setup` (a permission, not the account).
 */
function isAccessRefused(err: Error): boolean {
  return /^Handshake terminated by server: 403\b/.test(err.message);
}

function withHeartbeat(url: string, heartbeat: number): string {
  const u = new URL(url);
  u.searchParams.set("heartbeat", String(heartbeat));
  return u.toString();
}

export async function connectBroker(url: string, options: BrokerOptions): Promise<BrokerLink> {
  const link = new RecoveringBroker(url, options);
  await link.open();
  return link;
}

export type { ConfirmChannel, ConsumeMessage, Options as AmqpOptions } from "amqplib";
