/**
 * The REST API end to end (routes, tokens, hostile input, registration; submits and the broker side are in api.submit.test.ts), in-process (`startService`) with the real RabbitMQ
 * (a vhost of its own) and both stores: PGlite and Postgres. The test plays
 * the endpoint's part (MEP, UEP) with its own amqplib channel.
 */
import { randomUUID } from "node:crypto";
import { JSON_DATA, paths, SOURCE_CODE } from "@conduit/protocol";
import { describe, expect, it } from "vitest";
import { API_ROUTES } from "./helpers/api-route-list.js";
import { MAX_REQUEST_BYTES, useApiService } from "./helpers/api-suite.js";
import { submitBody } from "./helpers/rest.js";
import { TEST_STORES } from "./helpers/service.js";

describe.each(TEST_STORES)("API on $name", ({ store }) => {
  const api = useApiService(store);
  const { call, expectError, registerEndpoint, registerFunction } = api;

  it("answers /healthz and /openapi.json without a token, listing every route", async () => {
    expect(await call("GET", "/healthz", { token: null })).toEqual({
      status: 200,
      body: { status: "ok", version: expect.any(String) },
    });
    const doc = await call<{ openapi: string; paths: Record<string, Record<string, unknown>> }>(
      "GET",
      "/openapi.json",
      {
        token: null,
      },
    );
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toMatch(/^3\./);
    const routes = Object.entries(doc.body.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect(routes.sort()).toEqual([...API_ROUTES].sort());
  });

  it("refuses a missing or bad token with 401 before looking at the body", async () => {
    const path = `/v1/endpoints/${randomUUID()}/submit`;
    for (const bearer of [null, "not-a-token"]) {
      for (const options of [
        { body: { tasks: "not a list" } },
        { raw: "{not json" },
        { raw: "x".repeat(MAX_REQUEST_BYTES + 10) },
      ]) {
        const r = await call("POST", path, { token: bearer, ...options });
        const body = expectError(r, 401, "UNAUTHORIZED");
        // Anyone who can connect reads this: it names credentials.json, not where this server keeps it.
        expect(body.message).toBe(
          "Missing or invalid API token; set CONDUIT_TOKEN to a token from the service's administrator (conduit-service user add or user token), or use the token in credentials.json under CONDUIT_USER_DIR (default ~/.conduit) of the account that runs the service.",
        );
        expect(body.message).not.toContain(paths.userDir());
      }
    }
    expectError(await call("GET", "/v1/whoami", { token: null }), 401, "UNAUTHORIZED");
  });

  it("names the bad field of an invalid body, and keeps serving", async () => {
    const endpointId = await registerEndpoint();
    const bad = await call("POST", `/v1/endpoints/${endpointId}/submit`, {
      body: { tasks: [{ task_id: "x", function_id: randomUUID(), args: { strategy: JSON_DATA, data: "[]" } }] },
    });
    expect(expectError(bad, 400, "INVALID_REQUEST").message).toBe(
      "Invalid request: body.tasks[0].task_id must be a UUID; fix that field and send the request again.",
    );
    const missing = await call("POST", "/v1/functions", { body: {} });
    expect(expectError(missing, 400, "INVALID_REQUEST").message).toMatch(/body\.function is required/);
    expectError(await call("POST", "/v1/functions", { raw: "{oops" }), 400, "INVALID_JSON");
    expectError(await call("GET", "/v1/tasks/not-a-uuid"), 400, "INVALID_REQUEST");
    expectError(await call("GET", "/v1/nowhere"), 404, "ROUTE_NOT_FOUND");
    expect((await call("GET", "/healthz")).status).toBe(200);
  });

  /** JSON text of `{"a": … 1 …}` nested `levels` objects deep (JSON.stringify would recurse). */
  const deep = (levels: number) => `${'{"a":'.repeat(levels)}1${"}".repeat(levels)}`;

  it("refuses NUL, unpaired surrogates and over-deep JSON in any field with 400 naming the field, storing nothing", async () => {
    const endpointId = await registerEndpoint();
    const functionId = await registerFunction();
    const endpoints = (await call<unknown[]>("GET", "/v1/endpoints")).body.length;
    const taskIds: string[] = [];
    const submit = (extra: Record<string, unknown>) => {
      const body = submitBody(functionId, 4, extra as never);
      taskIds.push(...body.tasks.map((t) => t.task_id));
      return body;
    };
    const withArgs = (data: string) => {
      const body = submit({});
      body.tasks[3].args = { strategy: JSON_DATA, data };
      return body;
    };
    const nul = "contains a NUL character (\\u0000); remove it and send the request again.";
    const surrogate = (unit: string) =>
      `contains an unpaired UTF-16 surrogate (\\u${unit}), which is not valid Unicode; remove it and send the request again.`;
    const nested = "is nested more than 64 levels deep; flatten it and send the request again.";
    const submitPath = `/v1/endpoints/${endpointId}/submit`;
    const cases: Array<{ method: string; path: string; body?: unknown; raw?: string; message: string }> = [
      // NUL characters
      { method: "POST", path: "/v1/endpoints", body: { name: "ep\u0000" }, message: `body.name ${nul}` },
      {
        method: "POST",
        path: "/v1/endpoints",
        body: { name: "ep", metadata: { hosts: ["a", "b\u0000"] } },
        message: `body.metadata.hosts[1] ${nul}`,
      },
      {
        method: "POST",
        path: "/v1/functions",
        body: { function: { strategy: SOURCE_CODE, data: "() => '\u0000'" } },
        message: `body.function.data ${nul}`,
      },
      {
        method: "POST",
        path: "/v1/functions",
        body: { function: { strategy: SOURCE_CODE, data: "() => 1" }, name: "f\u0000" },
        message: `body.name ${nul}`,
      },
      {
        method: "POST",
        path: submitPath,
        body: submit({ user_endpoint_config: { worker_init: "source x\u0000" } }),
        message: `body.user_endpoint_config.worker_init ${nul}`,
      },
      { method: "POST", path: submitPath, body: withArgs("[\u0000]"), message: `body.tasks[3].args.data ${nul}` },
      {
        method: "POST",
        path: submitPath,
        body: submit({ resource_specification: { "num\u0000nodes": 1 } }),
        message: `body.resource_specification has a key ("num\\u0000nodes") that ${nul.replace("remove it", "rename it")}`,
      },
      {
        method: "POST",
        path: "/v1/admin/identities",
        body: { username: "mallory\u0000@example.org" },
        message: `body.username ${nul}`,
      },
      {
        method: "POST",
        path: "/v1/admin/identities/mallory%00@example.org/tokens",
        message: `params.username ${nul}`,
      },
      { method: "DELETE", path: `/v1/endpoints/${endpointId}?force=%00`, message: `querystring.force ${nul}` },
      // Unpaired surrogates (a high one alone, a low one alone)
      { method: "POST", path: "/v1/endpoints", body: { name: "ep\ud800" }, message: `body.name ${surrogate("d800")}` },
      {
        method: "POST",
        path: "/v1/endpoints",
        body: { name: "ep", display_name: "x\udc00y" },
        message: `body.display_name ${surrogate("dc00")}`,
      },
      {
        method: "POST",
        path: "/v1/functions",
        body: { function: { strategy: "conduit.\udbff", data: "1" } },
        message: `body.function.strategy ${surrogate("dbff")}`,
      },
      {
        method: "POST",
        path: submitPath,
        body: submit({ user_runtime: { hostname: "\udfff" } }),
        message: `body.user_runtime.hostname ${surrogate("dfff")}`,
      },
      {
        method: "POST",
        path: submitPath,
        body: submit({ user_endpoint_config: { "\ud83d": true } }),
        message: `body.user_endpoint_config has a key ("\\ud83d") that ${surrogate("d83d").replace("remove it", "rename it")}`,
      },
      {
        method: "POST",
        path: "/v1/admin/identities",
        body: { username: "mallory@example.org", name: "\ud800" },
        message: `body.name ${surrogate("d800")}`,
      },
      // JSON nested thousands deep
      {
        method: "POST",
        path: "/v1/endpoints",
        raw: `{"name":"ep","metadata":${deep(5_000)}}`,
        message: `body.metadata.a.a.a.a.a… ${nested}`,
      },
      {
        method: "POST",
        path: submitPath,
        raw: JSON.stringify(submit({ user_endpoint_config: "DEEP" })).replace('"DEEP"', deep(3_000)),
        message: `body.user_endpoint_config.a.a.a.a.a… ${nested}`,
      },
      {
        method: "POST",
        path: submitPath,
        raw: JSON.stringify(submit({ resource_specification: "DEEP" })).replace('"DEEP"', deep(100)),
        message: `body.resource_specification.a.a.a.a.a… ${nested}`,
      },
      {
        method: "POST",
        path: "/v1/functions",
        raw: `{"function":{"strategy":"x","data":"1"},"name":${"[".repeat(2_000)}${"]".repeat(2_000)}}`,
        message: `body.name[0][0][0][0][0]… ${nested}`,
      },
    ];
    for (const c of cases) {
      const r = await call(c.method, c.path, { body: c.body, raw: c.raw });
      const what = `${c.method} ${c.path} ${c.raw?.slice(0, 80) ?? JSON.stringify(c.body ?? null).slice(0, 200)}`;
      expect(r.status, what).toBe(400);
      expect(expectError(r, 400, "INVALID_TEXT").message, what).toBe(`Invalid request: ${c.message}`);
    }
    // Nothing was stored, and the service still serves.
    expect(await api.service.store.getTasks(taskIds)).toEqual([]);
    expect(await api.service.store.findIdentityByUsername("mallory@example.org")).toBeUndefined();
    expect((await call<unknown[]>("GET", "/v1/endpoints")).body).toHaveLength(endpoints);
    expect((await call("GET", "/healthz")).status).toBe(200);
  });

  it("accepts JSON nested 64 levels deep, and paired surrogates and other control characters", async () => {
    // The body is level 1 and the outermost object of metadata level 2: 63 nested objects end at level 64.
    const r = await call("POST", "/v1/endpoints", {
      raw: `{"name":"ep \\ud83d\\ude00\\u0001","metadata":${deep(63)}}`,
    });
    expect(r.status).toBe(200);
    const endpoint = await api.service.store.getEndpoint((r.body as { endpoint_id: string }).endpoint_id);
    expect(endpoint?.name).toBe("ep \ud83d\ude00\u0001");
    const tooDeep = await call("POST", "/v1/endpoints", { raw: `{"name":"ep","metadata":${deep(64)}}` });
    expect(expectError(tooDeep, 400, "INVALID_TEXT").message).toMatch(/nested more than 64 levels deep/);
  });

  it("tells who the token belongs to", async () => {
    const me = await call("GET", "/v1/whoami");
    expect(me).toEqual({ status: 200, body: expect.objectContaining({ username: "admin@localhost" }) });
    const bob = await call("GET", "/v1/whoami", { token: api.bobToken });
    expect(bob.body).toMatchObject({ username: "bob@example.org", name: "Bob" });
  });
});
