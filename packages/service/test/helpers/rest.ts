/**
 * REST calls of the route tests, against a service started in-process. The
 * target is read at each call: the tests start the service in `beforeAll`.
 */
import { randomUUID } from "node:crypto";
import { type ApiErrorBody, brokerUser, JSON_DATA, SOURCE_CODE, type SubmitRequest } from "@conduit/protocol";
import amqp, { type ChannelModel } from "amqplib";
import { expect } from "vitest";

export interface CallOptions {
  /** Bearer token; the target's by default, `null` for none. */
  token?: string | null;
  body?: unknown;
  /** A raw body, sent as is with `content-type: application/json`. */
  raw?: string;
}

/**
 * @param reachable maps a broker URL the service handed out to one this
 * machine can connect to (tests may hand out another host on purpose).
 */
export function restHelpers(
  target: () => { url: string; token: string },
  reachable: (amqpUrl: string) => string = (url) => url,
) {
  async function call<T = unknown>(
    method: string,
    path: string,
    options: CallOptions = {},
  ): Promise<{ status: number; body: T }> {
    const headers: Record<string, string> = {};
    const bearer = options.token === undefined ? target().token : options.token;
    if (bearer !== null) headers.authorization = `Bearer ${bearer}`;
    let body: string | undefined;
    if (options.raw !== undefined || options.body !== undefined) {
      headers["content-type"] = "application/json";
      body = options.raw ?? JSON.stringify(options.body);
    }
    const response = await fetch(`${target().url}${path}`, { method, headers, body });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T };
  }

  /** Checks an error reply's status and code; returns its body. */
  function expectError(r: { status: number; body: unknown }, status: number, code: string): ApiErrorBody {
    expect(r.status).toBe(status);
    const body = r.body as ApiErrorBody;
    expect(body).toMatchObject({ statusCode: status, code });
    expect(typeof body.error).toBe("string");
    return body;
  }

  /** The broker URL each endpoint's last registration handed out (its MEP's account). */
  const endpointUrls = new Map<string, string>();
  const endpointLinks = new Map<string, Promise<{ model: ChannelModel; channel: amqp.Channel }>>();

  async function registerEndpoint(body: Record<string, unknown> = {}, as?: string): Promise<string> {
    const r = await call<{ endpoint_id: string; amqp: { url: string } }>("POST", "/v1/endpoints", {
      token: as,
      body: { name: "ep", ...body },
    });
    expect(r.status).toBe(200);
    endpointUrls.set(r.body.endpoint_id, r.body.amqp.url);
    return r.body.endpoint_id;
  }

  /**
   * Plays a registered endpoint's MEP on the broker: publishes (persistent)
   * with the account its registration handed out, with that account's
   * user-id, as the service requires of whoever reports results and heartbeats.
   */
  async function asEndpoint(endpointId: string) {
    const url = endpointUrls.get(endpointId);
    if (url === undefined) throw new Error(`endpoint ${endpointId} was not registered by these helpers`);
    let link = endpointLinks.get(endpointId);
    if (link === undefined) {
      link = amqp.connect(reachable(url)).then(async (model) => ({ model, channel: await model.createChannel() }));
      endpointLinks.set(endpointId, link);
    }
    const { channel } = await link;
    const userId = brokerUser(url);
    return {
      publish: (exchange: string, routingKey: string, content: Buffer) =>
        channel.publish(exchange, routingKey, content, { persistent: true, userId }),
    };
  }

  /** Closes the connections {@link asEndpoint} opened. */
  async function closeEndpointLinks(): Promise<void> {
    const links = [...endpointLinks.values()];
    endpointLinks.clear();
    for (const link of links) await (await link).model.close().catch(() => undefined);
  }

  async function registerFunction(data = `(x) => x + ${Math.random()}`, as?: string): Promise<string> {
    const r = await call<{ function_id: string }>("POST", "/v1/functions", {
      token: as,
      body: { function: { strategy: SOURCE_CODE, data } },
    });
    expect(r.status).toBe(200);
    return r.body.function_id;
  }

  return { call, expectError, registerEndpoint, registerFunction, asEndpoint, closeEndpointLinks };
}

/** A submit of `n` tasks of one function with fresh task ids. */
export function submitBody(functionId: string, n = 1, extra: Partial<SubmitRequest> = {}): SubmitRequest {
  return {
    tasks: Array.from({ length: n }, (_, i) => ({
      task_id: randomUUID(),
      function_id: functionId,
      args: { strategy: JSON_DATA, data: JSON.stringify({ args: [i] }) },
    })),
    ...extra,
  };
}
