import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JSON_DATA, MAX_BATCH_STATUS_IDS, TaskExecutionFailed, type TaskStatusResponse } from "@conduit/protocol";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Client } from "../src/client.js";
import { ConduitApiError, ServiceUnreachableError } from "../src/errors.js";

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

let server: Server;
let url: string;
const routes = new Map<string, Handler>();
const seen: Array<{ method: string; path: string; authorization?: string; body: string }> = [];

beforeAll(async () => {
  server = createServer(async (req, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    seen.push({ method: req.method ?? "", path: req.url ?? "", authorization: req.headers.authorization, body });
    const handler = routes.get(`${req.method} ${req.url}`);
    if (handler) handler(req, res, body);
    else res.writeHead(500).end("no route");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const savedEnv = { ...process.env };
afterEach(() => {
  routes.clear();
  seen.length = 0;
  process.env = { ...savedEnv };
});

function json(status: number, value: unknown): Handler {
  return (_req, res) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(value));
  };
}

function task(fields: Partial<TaskStatusResponse>): TaskStatusResponse {
  return {
    task_id: "t1",
    state: "success",
    endpoint_id: "e",
    function_id: "f",
    task_group_id: "g",
    created_at: new Date(0).toISOString(),
    completed_at: null,
    ...fields,
  };
}

describe("Client", () => {
  it("turns an API error body into a ConduitApiError with the service's sentence", async () => {
    routes.set(
      "GET /v1/functions/nope",
      json(404, {
        statusCode: 404,
        code: "FUNCTION_NOT_FOUND",
        error: "Not Found",
        message: "Function nope is not registered; register it first.",
      }),
    );
    const client = new Client({ serviceUrl: url, token: "tok" });
    const err = await client.getFunction("nope").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConduitApiError);
    expect(err).toMatchObject({
      code: "FUNCTION_NOT_FOUND",
      statusCode: 404,
      message: "Function nope is not registered; register it first.",
    });
    expect(seen[0].authorization).toBe("Bearer tok");
  });

  it("names the status and URL when the error is not the service's JSON", async () => {
    routes.set("GET /v1/whoami", (_req, res) => res.writeHead(502, "Bad Gateway").end("<html>proxy</html>"));
    const err = await new Client({ serviceUrl: url, token: "tok" }).whoami().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "HTTP_502", statusCode: 502 });
    expect((err as Error).message).toBe(
      `The service answered 502 Bad Gateway to GET ${url}/v1/whoami; check that serviceUrl points at a Conduit service and see its log.`,
    );
  });

  it("says where it looked and how to start the service when nothing listens", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const client = new Client({ serviceUrl: `http://127.0.0.1:${port}/`, token: "tok", retries: 1 });
    const err = await client.listEndpoints().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServiceUnreachableError);
    expect((err as Error).message).toBe(
      `Cannot reach the Conduit service at http://127.0.0.1:${port} (connect ECONNREFUSED 127.0.0.1:${port}); is the service running? (npx conduit-service start)`,
    );
  });

  it("repeats a submit whose connection was cut, since its task ids make it idempotent", async () => {
    let calls = 0;
    routes.set("POST /v1/endpoints/ep1/submit", (req, res, body) => {
      calls++;
      if (calls === 1) {
        req.socket.destroy();
        return;
      }
      const { tasks } = JSON.parse(body) as { tasks: Array<{ task_id: string }> };
      json(200, {
        task_group_id: "g",
        uep_id: "u",
        task_ids: tasks.map((t) => t.task_id),
        amqp: { url: "amqp://x" },
        result_queue: "tg.g.results",
      })(req, res, body);
    });
    const client = new Client({ serviceUrl: url, token: "tok" });
    const response = await client.submit("ep1", {
      tasks: [{ task_id: "t1", function_id: "f1", args: { strategy: JSON_DATA, data: '{"args":[]}' } }],
    });
    expect(response.task_ids).toEqual(["t1"]);
    expect(calls).toBe(2);
    expect(seen.map((s) => s.body)).toEqual([seen[0].body, seen[0].body]);
  });

  it("asks batch_status for at most MAX_BATCH_STATUS_IDS ids per request, one request after another", async () => {
    let inFlight = 0;
    let most = 0;
    routes.set("POST /v1/tasks/batch_status", (req, res, body) => {
      const { task_ids } = JSON.parse(body) as { task_ids: string[] };
      inFlight++;
      most = Math.max(most, inFlight);
      setTimeout(() => {
        inFlight--;
        json(200, { tasks: Object.fromEntries(task_ids.map((id) => [id, task({ task_id: id })])) })(req, res, body);
      }, 20);
    });
    const client = new Client({ serviceUrl: url, token: "tok" });
    const ids = Array.from({ length: 2 * MAX_BATCH_STATUS_IDS + 500 }, (_, i) => `t${i}`);
    const { tasks } = await client.getBatchStatus(ids);
    expect(seen.map((s) => (JSON.parse(s.body) as { task_ids: string[] }).task_ids.length)).toEqual([
      MAX_BATCH_STATUS_IDS,
      MAX_BATCH_STATUS_IDS,
      500,
    ]);
    expect(seen.flatMap((s) => (JSON.parse(s.body) as { task_ids: string[] }).task_ids)).toEqual(ids);
    expect(most).toBe(1);
    expect(Object.keys(tasks)).toEqual(ids);
    expect(await client.getBatchStatus([])).toEqual({ tasks: {} });
    expect(seen).toHaveLength(3);
  });

  it("resolves a result, rejects with the remote error, and says when a task is not finished", async () => {
    routes.set("GET /v1/tasks/ok", json(200, task({ task_id: "ok", result: { strategy: JSON_DATA, data: "42" } })));
    routes.set(
      "GET /v1/tasks/bad",
      json(
        200,
        task({
          task_id: "bad",
          state: "failed",
          error: { code: "TASK_EXCEPTION", name: "TypeError", message: "boom", stack: "TypeError: boom\n    at f" },
        }),
      ),
    );
    routes.set("GET /v1/tasks/later", json(200, task({ task_id: "later", state: "waiting-for-endpoint" })));
    const client = new Client({ serviceUrl: url, token: "tok" });
    expect(await client.getResult("ok")).toBe(42);
    const err = await client.getResult("bad").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskExecutionFailed);
    expect(err).toMatchObject({ name: "TypeError", message: "boom", stack: "TypeError: boom\n    at f" });
    await expect(client.getResult("later")).rejects.toMatchObject({ code: "TASK_PENDING" });
  });

  it("finds the service URL and token through CONDUIT_* and credentials.json", async () => {
    const userDir = mkdtempSync(join(tmpdir(), "conduit-sdk-client-"));
    try {
      process.env.CONDUIT_USER_DIR = userDir;
      delete process.env.CONDUIT_TOKEN;
      process.env.CONDUIT_SERVICE_URL = `${url}/`;
      // As in a batch job, whether or not this test runs on a terminal.
      const client = new Client({ interactiveLogin: false });
      expect(client.serviceUrl).toBe(url);
      await expect(client.whoami()).rejects.toThrow(
        `No credentials for the Conduit service at ${url}: run \`npx conduit login\` on a terminal, or set CONDUIT_CLIENT_ID and CONDUIT_CLIENT_SECRET to a client identity's id and secret.`,
      );

      delete process.env.CONDUIT_SERVICE_URL;
      writeFileSync(
        join(userDir, "credentials.json"),
        JSON.stringify({ service_url: url, token: "from-file", identity: { id: "i", username: "u@local" } }),
      );
      routes.set("GET /v1/whoami", json(200, { id: "i", username: "u@local" }));
      expect(await new Client().whoami()).toEqual({ id: "i", username: "u@local" });
      expect(seen.at(-1)?.authorization).toBe("Bearer from-file");
    } finally {
      rmSync(userDir, { recursive: true, force: true });
    }
  });

  it("refuses a service URL that is not http(s)", () => {
    expect(() => new Client({ serviceUrl: "amqp://127.0.0.1:5672", token: "t" })).toThrow(
      'serviceUrl "amqp://127.0.0.1:5672" is not an http(s) URL; pass one such as http://127.0.0.1:8400.',
    );
  });
});
