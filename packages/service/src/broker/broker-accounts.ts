/**
 * Per-endpoint, per-UEP and per-task-group RabbitMQ accounts, kept through the
 * management HTTP API (found beside `--amqp-url`, or `--amqp-management-url`),
 * so that an endpoint, a UEP or an SDK holding its credentials reaches only its
 * own queues, and publishes results and heartbeats only under its own
 * endpoint's routing keys.
 *
 * An endpoint's password is random and changes at every registration (that
 * revokes the previous MEP's credentials). UEP and task-group passwords are
 * derived, HMAC-SHA256(service secret, user name): a running UEP reconnects
 * with the URL it was started with, and an SDK re-attaches to its group, so
 * every replica, before and after a restart, must hand out the same password,
 * and none is stored.
 *
 * Permission regexes are matched by RabbitMQ against resource names (queues
 * and exchanges alike), topic permission regexes against routing keys; each is
 * anchored and its dots escaped.
 */
import { createHmac, randomBytes } from "node:crypto";
import {
  commandQueue,
  endpointBrokerUser,
  HEARTBEATS_EXCHANGE,
  heartbeatsRoutingKey,
  RESULTS_EXCHANGE,
  resultsRoutingKey,
  taskGroupBrokerUser,
  taskGroupResultQueue,
  uepBrokerUser,
  uepName,
  uepTaskQueue,
} from "@conduit/protocol";
import { ManagementApi, vhostOf } from "./management-api.js";

export interface BrokerPermissions {
  configure: string;
  write: string;
  read: string;
}

/** A topic permission (`PUT /api/topic-permissions/{vhost}/{user}`): routing keys on one topic exchange. */
export interface TopicPermission {
  exchange: string;
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
 * The routing keys an endpoint's MEP or UEP may publish with: its own
 * endpoint's results and heartbeats keys only, so it cannot put a message
 * into another endpoint's stream. Nobody reads from these exchanges through a
 * topic binding of their own (`read` covers binding a queue with a key).
 */
export function endpointTopicPermissions(endpointId: string): TopicPermission[] {
  return [
    { exchange: RESULTS_EXCHANGE, write: only(resultsRoutingKey(endpointId)), read: only() },
    { exchange: HEARTBEATS_EXCHANGE, write: only(heartbeatsRoutingKey(endpointId)), read: only() },
  ];
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
 * swept task group) is looked at again by the first hand-out after this long:
 * in the background (the hand-out does not wait), with one GET of its
 * permissions, and made again only when they are gone.
 */
const RECHECK_MS = 60_000;

/** Account deletions in flight at once when an identity is removed. */
const DELETE_CONCURRENCY = 8;

interface DerivedAccount {
  url: Promise<string>;
  /** When this process last made the account or saw that it exists (ms since the epoch). */
  checkedAt: number;
  /** A background look (and remake) in flight. */
  checking?: Promise<void>;
}

export class BrokerAccounts {
  private readonly api: ManagementApi;
  private readonly vhost: string;
  /** Derived accounts made (or checked) by this process, by user name. */
  private readonly derived = new Map<string, DerivedAccount>();
  /** When this process last handed out each derived account's URL (ms since the epoch), by user name. */
  private readonly handedOut = new Map<string, number>();
  /** Deletions in flight, by user name: making the same user again waits for them. */
  private readonly deleting = new Map<string, Promise<void>>();

  /** Accounts written (a user, its topic permissions and its permissions, PUT) by this process. */
  accountWrites = 0;
  /** Background looks at derived accounts done by this process. */
  rechecks = 0;
  private readonly recheckMs: number;

  /**
   * @param managementUrl `http://user:pass@host:15672` of an administrator.
   * @param publicAmqpUrl host, port and vhost of the URLs handed out.
   * @param secret key of the derived passwords, the same on every replica.
   * @param options.recheckMs how often a derived account is looked at again (see {@link RECHECK_MS}).
   */
  constructor(
    managementUrl: string,
    private readonly publicAmqpUrl: string,
    private readonly secret: string,
    options: { recheckMs?: number } = {},
  ) {
    this.recheckMs = options.recheckMs ?? RECHECK_MS;
    this.api = new ManagementApi(managementUrl);
    this.vhost = vhostOf(publicAmqpUrl);
  }

  /** The management API's port, told to MEPs for their guest/guest check. */
  get managementPort(): number {
    return this.api.port;
  }

  /** Creates (or rotates) the endpoint's account; resolves to the AMQP URL carrying it. */
  endpointUrl(endpointId: string): Promise<string> {
    return this.account(
      endpointBrokerUser(endpointId),
      endpointPermissions(endpointId),
      endpointTopicPermissions(endpointId),
      randomBytes(24).toString("base64url"),
    );
  }

  /** The UEP's account (made when this process has not made it lately); resolves to the AMQP URL carrying it. */
  uepUrl(endpointId: string, uepId: string): Promise<string> {
    return this.derivedUrl(
      uepBrokerUser(uepId),
      uepPermissions(endpointId, uepId),
      endpointTopicPermissions(endpointId),
    );
  }

  /** The task group's read-only account; resolves to the AMQP URL carrying it. */
  taskGroupUrl(taskGroupId: string): Promise<string> {
    // It may publish nowhere, so it needs no topic permissions.
    return this.derivedUrl(taskGroupBrokerUser(taskGroupId), taskGroupPermissions(taskGroupId), []);
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
    await this.api.request("DELETE", `/api/users/${encodeURIComponent(user)}`, undefined, [404]);
  }

  /**
   * Deletes the accounts of a removed identity's endpoints, of the UEPs that
   * ran for it or on its endpoints, and of its task groups. RabbitMQ closes
   * their open connections as it deletes them.
   */
  async deleteAccounts(owned: { endpointIds: string[]; uepIds: string[]; taskGroupIds: string[] }): Promise<void> {
    const deletions = [
      ...owned.endpointIds.map((id) => () => this.deleteUser(endpointBrokerUser(id))),
      ...owned.uepIds.map((id) => () => this.deleteDerived(uepBrokerUser(id))),
      ...owned.taskGroupIds.map((id) => () => this.deleteDerived(taskGroupBrokerUser(id))),
    ];
    // A few at a time: an identity may have run thousands of UEPs.
    for (let i = 0; i < deletions.length; i += DELETE_CONCURRENCY) {
      await Promise.all(deletions.slice(i, i + DELETE_CONCURRENCY).map((run) => run()));
    }
  }

  /** Users holding permissions on this vhost whose name starts with `prefix`. */
  async usersWithPrefix(prefix: string): Promise<string[]> {
    const listed = await this.api.request("GET", `/api/vhosts/${encodeURIComponent(this.vhost)}/permissions`);
    if (!Array.isArray(listed)) return [];
    return listed
      .map((p: unknown) => (p as { user?: unknown }).user)
      .filter((u): u is string => typeof u === "string" && u.startsWith(prefix));
  }

  /**
   * The derived account's URL. Only the first hand-out in this process waits
   * for the account to be made; later ones answer at once, and one every
   * {@link RECHECK_MS} starts a background look that remakes the account only
   * if another replica deleted it (the PUTs are not re-sent while it exists).
   */
  private derivedUrl(user: string, permissions: BrokerPermissions, topics: TopicPermission[]): Promise<string> {
    const now = Date.now();
    this.handedOut.set(user, now);
    const entry = this.derived.get(user);
    if (!entry) return this.makeDerived(user, permissions, topics, now).url;
    if (now - entry.checkedAt >= this.recheckMs && !entry.checking) {
      const checking = this.recheck(user, permissions, topics, entry)
        .catch(() => undefined)
        .finally(() => {
          if (entry.checking === checking) entry.checking = undefined;
        });
      entry.checking = checking;
    }
    return entry.url;
  }

  private makeDerived(user: string, permissions: BrokerPermissions, topics: TopicPermission[], now: number) {
    const made: DerivedAccount = { url: this.account(user, permissions, topics, this.password(user)), checkedAt: now };
    this.derived.set(user, made);
    // A failed attempt is retried by the next hand-out.
    made.url.catch(() => {
      if (this.derived.get(user) === made) this.derived.delete(user);
    });
    return made;
  }

  /** Off the hand-out: the account's permissions on the vhost still there, or the account made again. */
  private async recheck(
    user: string,
    permissions: BrokerPermissions,
    topics: TopicPermission[],
    entry: DerivedAccount,
  ): Promise<void> {
    const found = await this.api.request(
      "GET",
      `/api/permissions/${encodeURIComponent(this.vhost)}/${encodeURIComponent(user)}`,
      undefined,
      [404],
    );
    this.rechecks++;
    if (this.derived.get(user) !== entry) return;
    if (found !== undefined) {
      entry.checkedAt = Date.now();
      return;
    }
    // Deleted elsewhere: later hand-outs wait for the new one.
    await this.makeDerived(user, permissions, topics, Date.now()).url;
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

  private async account(
    user: string,
    permissions: BrokerPermissions,
    topics: TopicPermission[],
    password: string,
  ): Promise<string> {
    // A deletion still in flight would otherwise land after this PUT and undo it.
    await this.deleting.get(user)?.catch(() => undefined);
    const name = encodeURIComponent(user);
    const vhost = encodeURIComponent(this.vhost);
    this.accountWrites++;
    await this.api.request("PUT", `/api/users/${name}`, { password, tags: "" });
    // Topic permissions before the others: until it has permissions on the vhost, the account cannot publish at all.
    for (const topic of topics) await this.api.request("PUT", `/api/topic-permissions/${vhost}/${name}`, topic);
    await this.api.request("PUT", `/api/permissions/${vhost}/${name}`, permissions);
    const url = new URL(this.publicAmqpUrl);
    url.username = encodeURIComponent(user);
    url.password = encodeURIComponent(password);
    return url.toString();
  }
}
