/**
 * The service answers every error with its code's status in protocol's
 * ERROR_CODES: a real service (PGlite, a vhost of its own) is asked wrong
 * things of each kind (no token, no route, bad body, unknown ids, a refusal of
 * the admin routes, too large, wrong media type, a malformed request), and
 * each answer's HTTP status, its body's `statusCode` and the table agree.
 */
import { randomUUID } from "node:crypto";
import { connect } from "node:net";
import { type ApiErrorBody, ERROR_CODES, isErrorCode } from "@conduit/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningService } from "../src/index.js";
import { startTestService, type TestService } from "./helpers/service.js";

const MAX_REQUEST_BYTES = 10_000;

function tableStatus(code: string): number | undefined {
  return isErrorCode(code) ? (ERROR_CODES[code] as { status?: number }).status : undefined;
}

describe("error statuses", () => {
  let started: TestService;
  let service: RunningService;
  let bobToken: string;

  beforeAll(async () => {
    started = await startTestService({ maxTaskBytes: MAX_REQUEST_BYTES, maxRequestBytes: MAX_REQUEST_BYTES });
    service = started.value;
    bobToken = (await service.createIdentity("bob@example.org")).token;
  });

  afterAll(() => started?.dispose());

  async function ask(
    method: string,
    path: string,
    options: { token?: string | null; body?: string; type?: string } = {},
  ): Promise<{ status: number; body: ApiErrorBody }> {
    const headers: Record<string, string> = {};
    const token = options.token === undefined ? service.adminToken : options.token;
    if (token !== null) headers.authorization = `Bearer ${token}`;
    if (options.body !== undefined) headers["content-type"] = options.type ?? "application/json";
    const response = await fetch(`${service.url}${path}`, { method, headers, body: options.body });
    return { status: response.status, body: (await response.json()) as ApiErrorBody };
  }

  it("answers each kind of error with its code's status from ERROR_CODES", async () => {
    const id = randomUUID();
    const answers = [
      await ask("GET", "/v1/whoami", { token: null }),
      await ask("GET", "/v1/whoami", { token: "not-a-token" }),
      await ask("GET", "/v1/nowhere"),
      await ask("GET", `/v1/tasks/${id}`),
      await ask("GET", `/v1/functions/${id}`),
      await ask("GET", `/v1/endpoints/${id}`),
      await ask("GET", `/v1/task_groups/${id}`),
      await ask("GET", "/v1/admin/identities", { token: bobToken }),
      await ask("POST", "/v1/admin/identities", { body: JSON.stringify({ username: "no-domain" }) }),
      await ask("POST", "/v1/admin/identities", { body: JSON.stringify({ username: "bob@example.org" }) }),
      await ask("POST", "/v1/functions", { body: "{not json" }),
      await ask("POST", "/v1/functions", { body: JSON.stringify({ nothing: true }) }),
      await ask("POST", "/v1/functions", { body: "x".repeat(MAX_REQUEST_BYTES + 1) }),
      await ask("POST", "/v1/functions", { body: "<hello/>", type: "application/xml" }),
    ];
    const codes = answers.map((a) => a.body.code);
    expect(codes).toEqual([
      "UNAUTHORIZED",
      "UNAUTHORIZED",
      "ROUTE_NOT_FOUND",
      "TASK_NOT_FOUND",
      "FUNCTION_NOT_FOUND",
      "ENDPOINT_NOT_FOUND",
      "TASK_GROUP_NOT_FOUND",
      "ADMIN_ONLY",
      "INVALID_USERNAME",
      "IDENTITY_EXISTS",
      "INVALID_JSON",
      "INVALID_REQUEST",
      "REQUEST_TOO_LARGE",
      "UNSUPPORTED_MEDIA_TYPE",
    ]);
    for (const { status, body } of answers) {
      expect([body.code, status, body.statusCode]).toEqual([body.code, tableStatus(body.code), tableStatus(body.code)]);
    }
  });

  it("answers a request Node's HTTP parser refuses with MALFORMED_REQUEST at its table status", async () => {
    const { port, hostname } = new URL(service.url);
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), hostname, () => socket.end("NOT HTTP AT ALL\r\n\r\n"));
      let text = "";
      socket.on("data", (chunk) => {
        text += chunk.toString();
      });
      socket.on("end", () => resolve(text));
      socket.on("error", reject);
    });
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1]);
    const body = JSON.parse(raw.slice(raw.indexOf("\r\n\r\n") + 4)) as ApiErrorBody;
    expect([body.code, status, body.statusCode]).toEqual([
      "MALFORMED_REQUEST",
      ERROR_CODES.MALFORMED_REQUEST.status,
      ERROR_CODES.MALFORMED_REQUEST.status,
    ]);
  });
});
