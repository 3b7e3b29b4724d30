/**
 * The RabbitMQ management HTTP API as the service uses it: the administrator
 * login it is reached with (derived from `--amqp-url` unless
 * `--amqp-management-url` says otherwise), the check at start that it can make
 * accounts on the service's vhost, and one sentence for every way it fails.
 * The URL carrying a password is never logged.
 */
import { DEFAULT_MANAGEMENT_PORT } from "@conduit/protocol";
import { brokerAccountsFailed } from "../errors.js";

/** A management request that gets no answer within this long fails (as an unreachable API does). */
const REQUEST_TIMEOUT_MS = 15_000;

/**
 * The management API of the broker at `amqpUrl`: its host, port 15672 (https
 * on 15671 for `amqps://`), and the same credentials (amqplib's `guest`/`guest`
 * when the URL has none).
 */
export function managementUrlFor(amqpUrl: string): string {
  const amqp = new URL(amqpUrl);
  const tls = amqp.protocol === "amqps:";
  const url = new URL(
    `${tls ? "https" : "http"}://${amqp.hostname}:${DEFAULT_MANAGEMENT_PORT[tls ? "amqps:" : "amqp:"]}`,
  );
  // Both stay percent-encoded, as they were in the AMQP URL.
  url.username = amqp.username || "guest";
  url.password = amqp.password || "guest";
  return url.toString().replace(/\/+$/, "");
}

/** The vhost an AMQP URL names: its path without the leading slash, `/` when empty. */
export function vhostOf(amqpUrl: string): string {
  const path = new URL(amqpUrl).pathname;
  return path.length > 1 ? decodeURIComponent(path.slice(1)) : "/";
}

export class ManagementApi {
  /** The API's base URL without credentials (safe to show). */
  readonly base: string;
  /** The API's TCP port (told to MEPs, which check that guest/guest does not work there). */
  readonly port: number;
  private readonly user: string;
  private readonly authorization: string;

  /** @param managementUrl `http(s)://user:pass@host:port` of an administrator. */
  constructor(managementUrl: string) {
    const u = new URL(managementUrl);
    this.user = decodeURIComponent(u.username);
    this.authorization = `Basic ${Buffer.from(`${this.user}:${decodeURIComponent(u.password)}`).toString("base64")}`;
    u.username = "";
    u.password = "";
    this.base = u.toString().replace(/\/+$/, "");
    this.port = u.port ? Number(u.port) : u.protocol === "https:" ? 443 : 80;
  }

  /**
   * Checks that this login is an administrator's and that `vhost` exists:
   * what making accounts and setting their permissions there needs. Throws
   * the one sentence of {@link brokerAccountsFailed} otherwise.
   */
  async check(vhost: string): Promise<void> {
    const who = (await this.request("GET", "/api/whoami")) as { tags?: unknown } | undefined;
    // RabbitMQ 3.9+ lists tags as an array, older ones as a comma-separated string.
    const tags = Array.isArray(who?.tags) ? who.tags : String(who?.tags ?? "").split(",");
    if (!tags.includes("administrator")) {
      throw brokerAccountsFailed(this.base, `its user ${this.user} is not tagged administrator`);
    }
    const found = await this.request("GET", `/api/vhosts/${encodeURIComponent(vhost)}`, undefined, [404]);
    if (found === undefined) throw brokerAccountsFailed(this.base, `RabbitMQ has no vhost ${JSON.stringify(vhost)}`);
  }

  /** Resolves to the parsed JSON answer (undefined when empty or one of `okStatuses`). */
  async request(method: string, path: string, body?: unknown, okStatuses: number[] = []): Promise<unknown> {
    let response: Response;
    try {
      response = await fetch(`${this.base}${path}`, {
        method,
        headers: { authorization: this.authorization, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (err) {
      // fetch's own message is "fetch failed"; its cause says what failed (ECONNREFUSED, ENOTFOUND, …).
      const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
      const reason = String(cause?.code ?? cause?.message ?? (err as Error).message);
      throw brokerAccountsFailed(this.base, `nothing answers there: ${reason}`, err);
    }
    const text = await response.text().catch(() => "");
    if (!response.ok && !okStatuses.includes(response.status)) {
      // A user name in the path is an account's: it says nothing the status does not.
      const what = `${method} ${path.replace(/\/api\/users\/.*/, "/api/users/…")}`;
      throw brokerAccountsFailed(
        this.base,
        response.status === 401
          ? `it refused the login of ${this.user} (401)`
          : `it answered ${response.status} to ${what}`,
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
