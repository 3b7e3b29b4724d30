/**
 * Whether the broker host accepts RabbitMQ's default `guest`/`guest` login
 * from here. RabbitMQ refuses guest only from remote hosts, so on the broker's
 * own host any local user (any task of a multi-user endpoint) could log in as
 * the broker's administrator and act as the Conduit service. A multi-user MEP
 * therefore refuses to start while it works (see cli/start.ts), unless
 * `allow_default_broker_login: true` says this is a test on a shared broker.
 */
import http from "node:http";
import https from "node:https";
import { DEFAULT_MANAGEMENT_PORT } from "@conduit/protocol/wire";
import amqp from "amqplib";

/** Each attempt gives up after this long: a host that does not answer does not accept the login. */
const PROBE_TIMEOUT_MS = 3_000;

/** The one sentence a multi-user MEP refuses to start with when guest/guest works at `host`. */
export function defaultLoginRefusal(host: string): string {
  return `RabbitMQ at ${host} accepts the default guest/guest login from this host, so any local user could act as the Conduit service; give the service its own administrator and delete guest (rabbitmqctl delete_user guest).`;
}

/**
 * The broker host of `brokerUrl` when it accepts guest/guest over AMQP (on the
 * URL's host, port and vhost) or on the management API (GET /api/whoami, on
 * `managementPort` when the service said where it is, else the plugin's
 * default port); undefined when neither does.
 */
export async function acceptsDefaultLogin(brokerUrl: string, managementPort?: number): Promise<string | undefined> {
  const url = new URL(brokerUrl);
  const host = url.hostname;
  const secure = url.protocol === "amqps:";
  const port = managementPort ?? DEFAULT_MANAGEMENT_PORT[secure ? "amqps:" : "amqp:"];
  const [viaAmqp, viaHttp] = await Promise.all([amqpLogin(url), managementLogin(host, port, secure)]);
  return viaAmqp || viaHttp ? host : undefined;
}

async function amqpLogin(brokerUrl: URL): Promise<boolean> {
  const url = new URL(brokerUrl.href);
  url.username = "guest";
  url.password = "guest";
  url.search = "";
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  const opening = amqp.connect(url.href, {
    noDelay: true,
    timeout: PROBE_TIMEOUT_MS,
    clientProperties: { connection_name: "MEP guest/guest check" },
  });
  // A connection that opens after the deadline is closed as soon as it does.
  opening.then(
    (connection) => (timedOut ? connection.close().catch(() => undefined) : undefined),
    () => undefined,
  );
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      reject(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`));
    }, PROBE_TIMEOUT_MS);
  });
  try {
    const connection = await Promise.race([opening, deadline]);
    await connection.close().catch(() => undefined);
    return true;
  } catch (err) {
    // Logged in, then refused the vhost (530 NOT_ALLOWED): the password still worked.
    return /NOT[-_]ALLOWED/.test((err as Error).message);
  } finally {
    clearTimeout(timer);
  }
}

function managementLogin(host: string, port: number, secure: boolean): Promise<boolean> {
  const get = secure ? https.get : http.get;
  return new Promise((resolve) => {
    const request = get(
      {
        host,
        port,
        path: "/api/whoami",
        auth: "guest:guest",
        timeout: PROBE_TIMEOUT_MS,
        // Whether the login works, not whom to trust: a local attacker would not check the certificate either.
        rejectUnauthorized: false,
      },
      (response) => {
        response.resume();
        resolve(response.statusCode === 200);
      },
    );
    request.on("timeout", () => request.destroy());
    request.on("error", () => resolve(false));
  });
}
