/**
 * Per-endpoint, per-UEP and per-task-group RabbitMQ accounts, kept through the
 * management HTTP API (`--amqp-management-url`), so that an endpoint, a UEP or
 * an SDK holding its credentials reaches only its own queues. The URL carrying
 * a password is never logged.
 *
 * An endpoint's password is random and changes at every registration (that
 * revokes the previous MEP's credentials). UEP and task-group passwords are
 * derived, HMAC-SHA256(service secret, user name): a running UEP reconnects
 * with the URL it was started with, and an SDK re-attaches to its group, so
 * every replica, before and after a restart, must hand out the same password,
 * and none is stored.
 *
 * Permission regexes are matched by RabbitMQ against resource names (queues
 * and exchanges alike), so each is anchored and its dots escaped.
 */
import { createHmac, randomBytes } from "node:crypto";
import {
  ConduitError,
  commandQueue,
  endpointBrokerUser,
  HEARTBEATS_EXCHANGE,
  RESULTS_EXCHANGE,
  taskGroupBrokerUser,
  taskGroupResultQueue,
  uepBrokerUser,
  uepName,
  uepTaskQueue,
} from "@conduit/protocol";

export interface BrokerPermissions {
  configure: string;
  write: string;
  read: string;
}

function escapeRegex(name: string): string {
  return name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** `^(a|b)$` matching exactly these names. */
function only(...names: string[]): string {
  return names.length === 0 ? "^$" : `^(${names.map(escapeRegex).join("|")})$`;
}

/**
 * What an endpoint's MEP may do: consume its command queue, drain (check and
 * read) its UEPs' task queues, publish heartbeats and failed results. Scoped
 * MEPs only check the exchanges (passive declare needs no permission) and
 * leave binding the command queue to the service.
 */
export function endpointPermissions(endpointId: string): BrokerPermissions {
  const own = escapeRegex(commandQueue(endpointId));
  const ueps = `${escapeRegex(`${uepName(endpointId, "")}`)}[^.]+\\.tasks`;
  return {
    configure: `^(${own}|${ueps})$`,
    write: only(RESULTS_EXCHANGE, HEARTBEATS_EXCHANGE),
    read: `^(${own}|${ueps})$`,
  };
}

/** What one UEP may do: declare and consume its own task queue, publish results and heartbeats. */
export function uepPermissions(endpointId: string, uepId: string): BrokerPermissions {
  const queue = only(uepTaskQueue(endpointId, uepId));
  return { configure: queue, write: only(RESULTS_EXCHANGE, HEARTBEATS_EXCHANGE), read: queue };
}

/**
 * What an SDK may do with its task group's credentials: consume (and passively
 * check) the group's result queue. The service declares that queue.
 */
export function taskGroupPermissions(taskGroupId: string): BrokerPermissions {
  return { configure: only(), write: only(), read: only(taskGroupResultQueue(taskGroupId)) };
}

/**
 * A derived account another replica may have deleted (a UEP that ended, a
 * swept task group) is made again by the first hand-out after this long.
 */
const RECHECK_MS = 60_000;

interface DerivedAccount {
  url: Promise<string>;
  madeAt: number;
}

export class BrokerAccounts {
  private readonly base: string;
  private readonly authorization: string;
  private readonly vhost: string;
  /** Derived accounts made (or checked) by this process, by user name. */
  private readonly derived = new Map<string, DerivedAccount>();
  /** When this process last handed out each derived account's URL (ms since the epoch), by user name. */
  private readonly handedOut = new Map<string, number>();
  /** Deletions in flight, by user name: making the same user again waits for them. */
  private readonly deleting = new Map<string, Promise<void>>();

  /**
   * @param managementUrl `http://user:pass@host:15672` of an administrator.
   * @param publicAmqpUrl host, port and vhost of the URLs handed out.
   * @param secret key of the derived passwords, the same on every replica.
   */
  constructor(
    managementUrl: string,
    private readonly publicAmqpUrl: string,
    private readonly secret: string,
  ) {
    const u = new URL(managementUrl);
    this.authorization = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString("base64")}`;
    u.username = "";
    u.password = "";
    this.base = u.toString().replace(/\/+$/, "");
    const path = new URL(publicAmqpUrl).pathname;
    this.vhost = path.length > 1 ? decodeURIComponent(path.slice(1)) : "/";
  }

  /** Creates (or rotates) the endpoint's account; resolves to the AMQP URL carrying it. */
  endpointUrl(endpointId: string): Promise<string> {
    return this.account(
      endpointBrokerUser(endpointId),
      endpointPermissions(endpointId),
      randomBytes(24).toString("base64url"),
    );
  }

  /** The UEP's account (made when this process has not made it lately); resolves to the AMQP URL carrying it. */
  uepUrl(endpointId: string, uepId: string): Promise<string> {
    return this.derivedUrl(uepBrokerUser(uepId), uepPermissions(endpointId, uepId));
  }

  /** The task group's read-only account; resolves to the AMQP URL carrying it. */
  taskGroupUrl(taskGroupId: string): Promise<string> {
    return this.derivedUrl(taskGroupBrokerUser(taskGroupId), taskGroupPermissions(taskGroupId));
  }

  /** When this process last handed out the UEP's URL (ms since the epoch), if it did. */
  uepHandedOutAt(uepId: string): number | undefined {
    return this.handedOut.get(uepBrokerUser(uepId));
  }

  /** Whether this process handed out the task group's URL within the last `ms`. */
  taskGroupHandedOutWithin(taskGroupId: string, ms: number): boolean {
    return Date.now() - (this.handedOut.get(taskGroupBrokerUser(taskGroupId)) ?? Number.NEGATIVE_INFINITY) <= ms;
  }

  /**
   * Deletes the account of a UEP that stopped at `stoppedAt` (its clock, ms
   * since the epoch), unless this process handed out its URL after that: the
   * same UEP id is then starting again, with that account. True if deleted.
   */
  async uepStopped(uepId: string, stoppedAt: number): Promise<boolean> {
    // Checked and forgotten in one synchronous step: a hand-out from here on makes the account again.
    if ((this.uepHandedOutAt(uepId) ?? Number.NEGATIVE_INFINITY) > stoppedAt) return false;
    await this.deleteDerived(uepBrokerUser(uepId));
    return true;
  }

  async deleteTaskGroupAccount(taskGroupId: string): Promise<void> {
    await this.deleteDerived(taskGroupBrokerUser(taskGroupId));
  }

  async deleteUser(user: string): Promise<void> {
    await this.request("DELETE", `/api/users/${encodeURIComponent(user)}`, undefined, [404]);
  }

  /** Users holding permissions on this vhost whose name starts with `prefix`. */
  async usersWithPrefix(prefix: string): Promise<string[]> {
    const listed = await this.request("GET", `/api/vhosts/${encodeURIComponent(this.vhost)}/permissions`);
    if (!Array.isArray(listed)) return [];
    return listed
      .map((p: unknown) => (p as { user?: unknown }).user)
      .filter((u): u is string => typeof u === "string" && u.startsWith(prefix));
  }

  private derivedUrl(user: string, permissions: BrokerPermissions): Promise<string> {
    const now = Date.now();
    this.handedOut.set(user, now);
    let entry = this.derived.get(user);
    if (!entry || now - entry.madeAt > RECHECK_MS) {
      const made: DerivedAccount = { url: this.account(user, permissions, this.password(user)), madeAt: now };
      entry = made;
      this.derived.set(user, made);
      // A failed attempt is retried by the next hand-out.
      made.url.catch(() => {
        if (this.derived.get(user) === made) this.derived.delete(user);
      });
    }
    return entry.url;
  }

  private async deleteDerived(user: string): Promise<void> {
    this.derived.delete(user);
    this.handedOut.delete(user);
    const deletion = this.deleteUser(user).finally(() => {
      if (this.deleting.get(user) === deletion) this.deleting.delete(user);
    });
    this.deleting.set(user, deletion);
    await deletion;
  }

  /** base64url(HMAC-SHA256(secret, user)): the same on every replica, never stored. */
  private password(user: string): string {
    return createHmac("sha256", this.secret).update(user).digest("base64url");
  }

  private async account(user: string, permissions: BrokerPermissions, password: string): Promise<string> {
    // A deletion still in flight would otherwise land after this PUT and undo it.
    await this.deleting.get(user)?.catch(() => undefined);
    const name = encodeURIComponent(user);
    await this.request("PUT", `/api/users/${name}`, { password, tags: "" });
    await this.request("PUT", `/api/permissions/${encodeURIComponent(this.vhost)}/${name}`, permissions);
    const url = new URL(this.publicAmqpUrl);
    url.username = encodeURIComponent(user);
    url.password = encodeURIComponent(password);
    return url.toString();
  }

  /** Resolves to the parsed JSON answer (undefined when empty or one of `okStatuses`). */
  private async request(method: string, path: string, body?: unknown, okStatuses: number[] = []): Promise<unknown> {
    let response: Response;
    try {
      response = await fetch(`${this.base}${path}`, {
        method,
        headers: { authorization: this.authorization, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new ConduitError(
        "BROKER_ACCOUNTS_FAILED",
        `Cannot reach the RabbitMQ management API at ${this.base} (${(err as Error).message}); enable it (rabbitmq-plugins enable rabbitmq_management) or fix --amqp-management-url.`,
        { cause: err },
      );
    }
    const text = await response.text().catch(() => "");
    if (!response.ok && !okStatuses.includes(response.status)) {
      throw new ConduitError(
        "BROKER_ACCOUNTS_FAILED",
        `The RabbitMQ management API at ${this.base} answered ${response.status} to ${method} ${path.replace(/\/api\/users\/.*/, "/api/users/…")}; check that the --amqp-management-url user is an administrator with access to the vhost.`,
      );
    }
    if (!response.ok || text === "") return undefined;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return undefined;
    }
  }
}
