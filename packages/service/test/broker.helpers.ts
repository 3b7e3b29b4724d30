/**
 * Shared by the broker.* tests: the RabbitMQ management API (guest on
 * 127.0.0.1:15672), clean-up of the users the tests made (users are global in
 * RabbitMQ, unlike the per-suite vhosts), AMQP reply codes, and the few REST
 * calls that make a service hand out accounts.
 */
import { randomUUID } from "node:crypto";
import { connect as netConnect } from "node:net";
import {
  commandQueue,
  decodeMessage,
  type RegisterEndpointResponse,
  SOURCE_CODE,
  type StartUepCommand,
  type SubmitRequest,
  type SubmitResponse,
  serializeJson,
} from "@conduit/protocol";
import amqp from "amqplib";
import { openChannel } from "./helpers/broker.js";

export const MANAGEMENT_URL = "http://guest:guest@127.0.0.1:15672";
const MANAGEMENT_AUTH = `Basic ${Buffer.from("guest:guest").toString("base64")}`;

export const managementReachable = await new Promise<boolean>((resolve) => {
  const socket = netConnect(15672, "127.0.0.1");
  socket.once("connect", () => {
    socket.destroy();
    resolve(true);
  });
  socket.once("error", () => resolve(false));
});

/** A suite's title, saying why it is skipped when it is. */
export function suiteTitle(title: string): string {
  return managementReachable
    ? title
    : `${title} (skipped: the RabbitMQ management API is not reachable on 127.0.0.1:15672; run rabbitmq-plugins enable rabbitmq_management)`;
}

/** GET on the management API: the status and the parsed body. */
export async function management(path: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`http://127.0.0.1:15672${path}`, { headers: { authorization: MANAGEMENT_AUTH } });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

/** PUT on the management API (as guest); throws unless it answers 2xx. */
export async function managementPut(path: string, body: unknown): Promise<void> {
  const response = await fetch(`http://127.0.0.1:15672${path}`, {
    method: "PUT",
    headers: { authorization: MANAGEMENT_AUTH, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`PUT ${path} answered ${response.status}: ${await response.text()}`);
}

/**
 * Makes a RabbitMQ user with `tags` and every permission on `vhost` (its
 * name, undecoded as in an AMQP URL path); resolves to its AMQP URL there.
 */
export async function makeBrokerUser(user: string, password: string, tags: string, vhost: string): Promise<string> {
  await managementPut(`/api/users/${encodeURIComponent(user)}`, { password, tags });
  await managementPut(`/api/permissions/${encodeURIComponent(vhost)}/${encodeURIComponent(user)}`, {
    configure: ".*",
    write: ".*",
    read: ".*",
  });
  return `amqp://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:5672/${encodeURIComponent(vhost)}`;
}

export async function userExists(user: string): Promise<boolean> {
  const { status } = await management(`/api/users/${encodeURIComponent(user)}`);
  if (status !== 200 && status !== 404) throw new Error(`GET /api/users/${user} answered ${status}.`);
  return status === 200;
}

/** Polls until `check` holds; throws with `what` after `timeoutMs`. */
export async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting until ${what}.`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Deletes `users`, and every conduit-ep-/conduit-uep-/conduit-tg- user left
 * without permissions (its test vhost is gone), e.g. those of an end-to-end UEP.
 */
export async function deleteUsers(users: Iterable<string>): Promise<void> {
  const all = new Set(users);
  const listed = await management("/api/users")
    .then((r) => r.body as Array<{ name: string }>)
    .catch(() => []);
  for (const { name } of listed) {
    if (!/^conduit-(ep|uep|tg)-/.test(name)) continue;
    // A service may be between creating a user and granting its permissions (topic ones first): not orphaned.
    const granted = async (kind: string) => {
      const r = await management(`/api/users/${encodeURIComponent(name)}/${kind}`).catch(() => undefined);
      return !Array.isArray(r?.body) || r.body.length > 0;
    };
    if (!(await granted("permissions")) && !(await granted("topic-permissions"))) all.add(name);
  }
  for (const user of all) {
    await fetch(`http://127.0.0.1:15672/api/users/${encodeURIComponent(user)}`, {
      method: "DELETE",
      headers: { authorization: MANAGEMENT_AUTH },
    }).catch(() => undefined);
  }
}

/** Runs `attempt` on a fresh connection; resolves to the AMQP reply code that closed the channel (0 if none). */
export async function replyCode(url: string, attempt: (channel: amqp.Channel) => Promise<unknown>): Promise<number> {
  const connection = await amqp.connect(url);
  connection.on("error", () => undefined);
  try {
    const channel = await connection.createChannel();
    channel.on("error", () => undefined);
    try {
      await attempt(channel);
      return 0;
    } catch (err) {
      return (err as { code?: number }).code ?? -1;
    }
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/** The REST calls a test needs to make a service hand out accounts, as one identity. */
export class RestUser {
  constructor(
    private readonly serviceUrl: string,
    private readonly token: string,
  ) {}

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await fetch(`${this.serviceUrl}/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const answer = (await response.json()) as T;
    if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${JSON.stringify(answer)}`);
    return answer;
  }

  registerEndpoint(name: string): Promise<RegisterEndpointResponse> {
    return this.call("POST", "/endpoints", { name });
  }

  async registerFunction(): Promise<string> {
    const { function_id } = await this.call<{ function_id: string }>("POST", "/functions", {
      function: { strategy: SOURCE_CODE, data: "(a, b) => a + b" },
    });
    return function_id;
  }

  /** One task; `extra` adds a task group, a config, … */
  submit(endpointId: string, functionId: string, extra: Partial<SubmitRequest> = {}): Promise<SubmitResponse> {
    return this.call("POST", `/endpoints/${endpointId}/submit`, {
      tasks: [{ task_id: randomUUID(), function_id: functionId, args: serializeJson([1, 2]) }],
      ...extra,
    });
  }
}

/** Every start command waiting on the endpoint's command queue, read with the endpoint's own account. */
export async function startCommands(endpoint: RegisterEndpointResponse): Promise<StartUepCommand[]> {
  const ep = await openChannel(endpoint.amqp.url);
  const commands: StartUepCommand[] = [];
  try {
    for (;;) {
      const msg = await ep.channel.get(commandQueue(endpoint.endpoint_id), { noAck: true });
      if (msg === false) return commands;
      commands.push(decodeMessage(msg.content, "start_uep"));
    }
  } finally {
    await ep.close();
  }
}

/** The scoped URL the last start command for `uepId` carried. */
export async function uepUrlHandedOut(endpoint: RegisterEndpointResponse, uepId: string): Promise<string> {
  const url = (await startCommands(endpoint)).filter((c) => c.uepId === uepId).at(-1)?.amqpUrl;
  if (!url) throw new Error(`No start command with a broker URL for UEP ${uepId}.`);
  return url;
}
