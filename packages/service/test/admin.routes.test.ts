/**
 * The admin routes over HTTP on both stores: only admin@localhost may call
 * them, they are in /openapi.json, and removing an identity refuses (or with
 * force, takes along) what it owns. That a user sees and fetches only their own
 * tasks is proven in api.routes.test.ts ("submits: …", its last lines).
 */
import { randomUUID } from "node:crypto";
import { JSON_DATA, SOURCE_CODE } from "@conduit/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningService } from "../src/index.js";
import { startTestService, TEST_STORES, type TestService } from "./helpers/service.js";

describe.each(TEST_STORES)("admin routes on $name", ({ store }) => {
  let started: TestService;
  let service: RunningService;

  beforeAll(async () => {
    started = await startTestService({}, store);
    service = started.value;
  }, 60_000);

  afterAll(() => started?.dispose());

  async function call<T = Record<string, unknown>>(
    method: string,
    path: string,
    options: { token?: string; body?: unknown } = {},
  ): Promise<{ status: number; body: T }> {
    const headers: Record<string, string> = { authorization: `Bearer ${options.token ?? service.adminToken}` };
    if (options.body !== undefined) headers["content-type"] = "application/json";
    const response = await fetch(`${service.url}${path}`, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T };
  }

  it("lists the admin routes in /openapi.json", async () => {
    const { body } = await call<{ paths: Record<string, Record<string, { tags: string[] }>> }>("GET", "/openapi.json");
    expect(Object.keys(body.paths["/v1/admin/identities"]).sort()).toEqual(["get", "post"]);
    expect(body.paths["/v1/admin/identities/{username}/tokens"].post.tags).toEqual(["admin"]);
    expect(body.paths["/v1/admin/identities/{username}"].delete.tags).toEqual(["admin"]);
  });

  it("answers anyone but admin@localhost with 403 ADMIN_ONLY, before reading the body", async () => {
    const { token } = await service.createIdentity("mallory@example.org");
    const attempts = [
      call("GET", "/v1/admin/identities", { token }),
      call("POST", "/v1/admin/identities", { token, body: { username: "eve@example.org" } }),
      call("POST", "/v1/admin/identities", { token, body: { not: "valid" } }),
      call("POST", "/v1/admin/identities/admin@localhost/tokens", { token }),
      call("DELETE", "/v1/admin/identities/mallory@example.org", { token }),
    ];
    for (const r of await Promise.all(attempts)) {
      expect(r.status).toBe(403);
      expect(r.body).toMatchObject({ code: "ADMIN_ONLY", message: expect.stringMatching(/not mallory@example\.org/) });
    }
    expect((await call("GET", "/v1/whoami", { token })).body).toMatchObject({ username: "mallory@example.org" });
  });

  it("creates an identity with its fields and a token, and refuses a bad or taken username", async () => {
    const fields = { name: "Erin", email: "erin@example.org", organization: "Example U", identity_provider: "ldap" };
    const created = await call<{ identity: { id: string }; token: string }>("POST", "/v1/admin/identities", {
      body: { username: "erin@example.org", ...fields },
    });
    expect(created.status).toBe(201);
    const identity = { id: expect.stringMatching(/^[0-9a-f-]{36}$/), username: "erin@example.org", ...fields };
    expect(created.body).toEqual({ identity, token: expect.any(String), token_expires_at: null });
    expect((await call("GET", "/v1/whoami", { token: created.body.token })).body).toEqual(identity);
    expect((await call<unknown[]>("GET", "/v1/admin/identities")).body).toContainEqual({
      ...identity,
      tokens: [expect.objectContaining({ created_at: expect.any(String), expires_at: null })],
    });

    const taken = await call("POST", "/v1/admin/identities", { body: { username: "erin@example.org" } });
    expect(taken).toMatchObject({ status: 409, body: { code: "IDENTITY_EXISTS" } });
    for (const username of ["erin", "erin@", "a b@example.org", "x@y@z"]) {
      const bad = await call("POST", "/v1/admin/identities", { body: { username } });
      expect(bad).toMatchObject({ status: 400, body: { code: "INVALID_USERNAME" } });
    }
    const missing = await call("POST", "/v1/admin/identities", { body: { name: "no username" } });
    expect(missing).toMatchObject({ status: 400, body: { code: "INVALID_REQUEST" } });
    const unknown = await call("POST", "/v1/admin/identities/nobody@example.org/tokens");
    expect(unknown).toMatchObject({ status: 404, body: { code: "IDENTITY_NOT_FOUND" } });
  });

  it("gives a token an expiry, lists it, and answers an expired token with 401 saying so", async () => {
    const day = 86_400;
    const before = Date.now();
    const created = await call<{ identity: { id: string }; token: string; token_expires_at: string }>(
      "POST",
      "/v1/admin/identities",
      { body: { username: "grace@example.org", token_expires_in_seconds: 90 * day } },
    );
    expect(created.status).toBe(201);
    const expiresAt = Date.parse(created.body.token_expires_at);
    expect(expiresAt).toBeGreaterThanOrEqual(before + 90 * day * 1000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 90 * day * 1000);
    expect((await call("GET", "/v1/whoami", { token: created.body.token })).status).toBe(200);

    const second = await call<{ token: string; token_expires_at: string; revoked: number }>(
      "POST",
      "/v1/admin/identities/grace@example.org/tokens?expires_in_seconds=3600",
    );
    expect(second.status).toBe(200);
    expect(Date.parse(second.body.token_expires_at) - Date.now()).toBeLessThanOrEqual(3600 * 1000);
    const never = await call<{ token_expires_at: null }>("POST", "/v1/admin/identities/grace@example.org/tokens");
    expect(never.body.token_expires_at).toBeNull();

    const list = await call<Array<{ username: string; tokens: Array<{ expires_at: string | null }> }>>(
      "GET",
      "/v1/admin/identities",
    );
    expect(list.body.find((i) => i.username === "grace@example.org")?.tokens.map((t) => t.expires_at)).toEqual([
      created.body.token_expires_at,
      second.body.token_expires_at,
      null,
    ]);

    // An expired token: 401 with its own sentence, which names the way to a new one.
    const past = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
    const old = await service.store.createToken(created.body.identity.id, past);
    expect(await call("GET", "/v1/whoami", { token: old })).toEqual({
      status: 401,
      body: {
        statusCode: 401,
        code: "TOKEN_EXPIRED",
        error: "Unauthorized",
        message: `This API token of grace@example.org expired at ${past.toISOString()}; ask the service's administrator for a new one (\`conduit-service user token grace@example.org\`) and set CONDUIT_TOKEN to it.`,
      },
    });
    // A token that expires while the service remembers it (authenticator.ts) stops at its expiry all the same.
    const soon = await service.store.createToken(created.body.identity.id, new Date(Date.now() + 1_500));
    expect((await call("GET", "/v1/whoami", { token: soon })).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 1_600));
    expect(await call("GET", "/v1/whoami", { token: soon })).toMatchObject({
      status: 401,
      body: { code: "TOKEN_EXPIRED" },
    });

    for (const seconds of [0, -5, 1.5, 3650 * day + 1, "90d"]) {
      const bad = await call("POST", "/v1/admin/identities", {
        body: { username: "heidi@example.org", token_expires_in_seconds: seconds },
      });
      expect(bad, String(seconds)).toMatchObject({ status: 400, body: { code: "INVALID_REQUEST" } });
      const badQuery = await call(
        "POST",
        `/v1/admin/identities/grace@example.org/tokens?expires_in_seconds=${seconds}`,
      );
      expect(badQuery, String(seconds)).toMatchObject({ status: 400, body: { code: "INVALID_REQUEST" } });
    }
    expect(await service.store.findIdentityByUsername("heidi@example.org")).toBeUndefined();
  });

  it("keeps the admin, and removes an owner of endpoints and tasks only with force", async () => {
    const removeAdmin = await call("DELETE", "/v1/admin/identities/admin@localhost?force=true");
    expect(removeAdmin).toMatchObject({ status: 409, body: { code: "ADMIN_NOT_REMOVABLE" } });

    const { identity, token } = await service.createIdentity("frank@example.org");
    const endpoint = await call<{ endpoint_id: string }>("POST", "/v1/endpoints", { token, body: { name: "ep" } });
    const fn = await call<{ function_id: string }>("POST", "/v1/functions", {
      token,
      body: { function: { strategy: SOURCE_CODE, data: "(x) => x" } },
    });
    const taskId = randomUUID();
    const submit = await call("POST", `/v1/endpoints/${endpoint.body.endpoint_id}/submit`, {
      token,
      body: {
        tasks: [{ task_id: taskId, function_id: fn.body.function_id, args: { strategy: JSON_DATA, data: "[1]" } }],
      },
    });
    expect(submit.status).toBe(200);

    const refused = await call("DELETE", "/v1/admin/identities/frank@example.org");
    expect(refused).toEqual({
      status: 409,
      body: {
        statusCode: 409,
        code: "IDENTITY_IN_USE",
        error: "Conflict",
        message:
          "Identity frank@example.org owns 1 endpoint and 1 task; remove it with --force (?force=true) to delete those too.",
      },
    });
    const removed = await call("DELETE", "/v1/admin/identities/frank@example.org?force=true");
    expect(removed).toEqual({
      status: 200,
      body: { identity: { id: identity.id, username: "frank@example.org" }, endpoints: 1, tasks: 1 },
    });
    expect(await service.store.getTask(taskId)).toBeUndefined();
    expect(await service.store.getEndpoint(endpoint.body.endpoint_id)).toBeUndefined();
    expect(await service.store.getFunction(fn.body.function_id)).toBeUndefined();
    expect(await service.store.findIdentityByUsername("frank@example.org")).toBeUndefined();
    const again = await call("DELETE", "/v1/admin/identities/frank@example.org");
    expect(again).toMatchObject({ status: 404, body: { code: "IDENTITY_NOT_FOUND" } });
  });
});
