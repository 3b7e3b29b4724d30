/**
 * Who published a message. RabbitMQ refuses a publish whose `user-id`
 * property differs from the publishing connection's user, so a consumer takes
 * `user-id` as proof of the sender and checks it against the account allowed
 * to send that message, never the ids written in its body. A refused message
 * is acked and dropped; {@link RefusedSenders} logs it, at most one line per
 * account per interval, so a hostile account cannot flood the log.
 *
 * ```ts
 * const refused = new RefusedSenders((line) => log.warn(line));
 * if (senderOf(msg) !== serviceUser) refused.refuse(senderOf(msg), "a start_uep command");
 * ```
 */
import type { Message } from "amqplib";

/** The message's `user-id` (checked by RabbitMQ), or undefined when it carries none. */
export function senderOf(message: Pick<Message, "properties">): string | undefined {
  const userId: unknown = message.properties.userId;
  return typeof userId === "string" && userId !== "" ? userId : undefined;
}

/**
 * The endpoint id of a `<endpoint id>.results` / `<endpoint id>.heartbeats`
 * routing key (topic permissions tie each account to its endpoint's keys, so a
 * body naming another endpoint is refused).
 */
export function routingKeyEndpoint(routingKey: string): string {
  const dot = routingKey.indexOf(".");
  return dot === -1 ? routingKey : routingKey.slice(0, dot);
}

/** How an absent `user-id` is named in the log. */
const NO_USER_ID = "(no user-id)";

/** Rate-limited log of refused messages, per sending account. */
export class RefusedSenders {
  /** Per account: when its last line was logged, and how many refusals since then went unlogged. */
  private readonly accounts = new Map<string, { loggedAt: number; unlogged: number }>();

  /**
   * @param log writes one line
   * @param intervalMs at most one line per account per this many ms @default 60_000
   * @param maxAccounts accounts remembered (the oldest are forgotten first) @default 10_000
   */
  constructor(
    private readonly log: (line: string) => void,
    private readonly intervalMs = 60_000,
    private readonly maxAccounts = 10_000,
  ) {}

  /**
   * Records a refused message: the first from an account is logged at once,
   * later ones at most once per interval, with the count of those not logged.
   * @param what the message and why it was refused, e.g. `a result for task X: it was routed to UEP Y`
   */
  refuse(sender: string | undefined, what: string): void {
    const account = sender ?? NO_USER_ID;
    const now = Date.now();
    const seen = this.accounts.get(account);
    if (seen && now - seen.loggedAt < this.intervalMs) {
      seen.unlogged++;
      return;
    }
    const more =
      seen && seen.unlogged > 0
        ? ` (${seen.unlogged} more refused from this account since ${new Date(seen.loggedAt).toISOString()})`
        : "";
    this.log(`Refused ${what}, sent by broker account ${account}; it was dropped${more}.`);
    this.accounts.delete(account);
    this.accounts.set(account, { loggedAt: now, unlogged: 0 });
    if (this.accounts.size > this.maxAccounts) {
      const oldest = this.accounts.keys().next().value;
      if (oldest !== undefined) this.accounts.delete(oldest);
    }
  }
}
