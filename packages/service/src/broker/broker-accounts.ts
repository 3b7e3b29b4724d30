/**
 * Per-endpoint and per-UEP RabbitMQ accounts, kept through the management
 * HTTP API (`--amqp-management-url`), so that an endpoint or a UEP holding its
 * credentials reaches only its own queues. Each account gets a new random
 * password whenever it is handed out; the URL carrying it is never logged.
 *
 * Permission regexes are matched by RabbitMQ against resource names (queues
 * and exchanges alike), so each is anchored and its dots escaped.
 */
import { randomBytes } from "node:crypto";
import {
  ConduitError,
  commandQueue,
  endpointBrokerUser,
  HEARTBEATS_EXCHANGE,
  RESULTS_EXCHANGE,
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

export class BrokerAccounts {
  private readonly base: string;
  private readonly authorization: string;
  /**
   * UEP accounts made by this process. A running UEP reconnects with the URL it
   * was started with, so its password is set once here, not at every submit.
   */
  private readonly uepUrls = new Map<string, Promise<string>>();

  /**
   * @param managementUrl `http://user:pass@host:15672` of an administrator.
   * @param publicAmqpUrl host, port and vhost of the URLs handed out.
   */
  constructor(
    managementUrl: string,
    private readonly publicAmqpUrl: string,
  ) {
    const u = new URL(managementUrl);
    this.authorization = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString("base64")}`;
    u.username = "";
    u.password = "";
    this.base = u.toString().replace(/\/+$/, "");
  }

  /** Creates (or rotates) the endpoint's account; resolves to the AMQP URL carrying it. */
  endpointUrl(endpointId: string): Promise<string> {
    return this.account(endpointBrokerUser(endpointId), endpointPermissions(endpointId));
  }

  /** Creates the UEP's account the first time this process needs it; resolves to the AMQP URL carrying it. */
  uepUrl(endpointId: string, uepId: string): Promise<string> {
    const key = uepTaskQueue(endpointId, uepId);
    let url = this.uepUrls.get(key);
    if (!url) {
      url = this.account(uepBrokerUser(uepId), uepPermissions(endpointId, uepId));
      this.uepUrls.set(key, url);
      // A failed attempt is retried by the next submit.
      url.catch(() => {
        if (this.uepUrls.get(key) === url) this.uepUrls.delete(key);
      });
    }
    return url;
  }

  async deleteUser(user: string): Promise<void> {
    await this.request("DELETE", `/api/users/${encodeURIComponent(user)}`, undefined, [404]);
  }

  private async account(user: string, permissions: BrokerPermissions): Promise<string> {
    const password = randomBytes(24).toString("base64url");
    const name = encodeURIComponent(user);
    await this.request("PUT", `/api/users/${name}`, { password, tags: "" });
    await this.request("PUT", `/api/permissions/${encodeURIComponent(this.vhost())}/${name}`, permissions);
    const url = new URL(this.publicAmqpUrl);
    url.username = encodeURIComponent(user);
    url.password = encodeURIComponent(password);
    return url.toString();
  }

  /** The vhost of the public URL (`/` when its path is empty). */
  private vhost(): string {
    const path = new URL(this.publicAmqpUrl).pathname;
    return path.length > 1 ? decodeURIComponent(path.slice(1)) : "/";
  }

  private async request(method: string, path: string, body: unknown, okStatuses: number[] = []): Promise<void> {
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
    await response.arrayBuffer().catch(() => undefined);
    if (!response.ok && !okStatuses.includes(response.status)) {
      throw new ConduitError(
        "BROKER_ACCOUNTS_FAILED",
        `The RabbitMQ management API at ${this.base} answered ${response.status} to ${method} ${path.replace(/\/api\/users\/.*/, "/api/users/…")}; check that the --amqp-management-url user is an administrator with access to the vhost.`,
      );
    }
  }
}
