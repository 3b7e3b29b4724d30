/**
 * `--shared-broker-account` (development only) hands everyone the service's
 * own broker login, so it serves one identity, the local administrator:
 * adding an identity (route, CLI and in-process) and registering a multi-user
 * endpoint are refused naming the flag, and a store already holding another
 * identity makes the service refuse to start with it.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import type { ApiErrorBody, RegisterEndpointResponse } from "@conduit/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningService, startService } from "../src/service.js";
import { managementReachable } from "./broker.helpers.js";
import { createPostgresDatabase } from "./helpers/databases.js";
import { startTestService, TEST_SERVICE_DEFAULTS, type TestService } from "./helpers/service.js";

const CLI = fileURLToPath(new URL("../src/cli.ts", import.meta.url));

describe("--shared-broker-account", () => {
  let started: TestService;
  let service: RunningService;

  beforeAll(async () => {
    // Postgres: a first PGlite start spends seconds in initdb; the store does not matter here.
    started = await startTestService({ sharedBrokerAccount: true }, "postgres");
    service = started.value;
  }, 60_000);

  afterAll(() => started?.dispose());

  async function post<T>(path: string, body: unknown): Promise<{ status: number; body: T }> {
    const response = await fetch(`${service.url}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${service.adminToken}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as T };
  }

  it("hands the admin's single-user endpoint the service's own URL, with no management API", async () => {
    expect(service.config.amqpManagementUrl).toBeUndefined();
    const r = await post<RegisterEndpointResponse>("/v1/endpoints", { name: "mine" });
    expect(r.status).toBe(200);
    expect(r.body.amqp.url).toBe(started.amqpUrl);
  });

  it("refuses a multi-user endpoint, naming the flag", async () => {
    const r = await post<ApiErrorBody>("/v1/endpoints", { name: "shared", multi_user: true });
    expect(r.status).toBe(403);
    expect(r.body).toMatchObject({ statusCode: 403, code: "SHARED_BROKER_ACCOUNT" });
    expect(r.body.message).toBe(
      "This service runs with --shared-broker-account, which hands everyone the service's own RabbitMQ account, so it cannot serve a multi-user endpoint; restart the service without --shared-broker-account (scoped broker accounts, the default), or set multi_user: false in the endpoint's config.yaml.",
    );
  });

  const oneIdentity =
    "This service runs with --shared-broker-account, which hands everyone the service's own RabbitMQ account, so it serves the local administrator only; restart it without --shared-broker-account (scoped broker accounts, the default) to add identities.";

  it("refuses another identity: the admin route, the CLI and in-process", async () => {
    const r = await post<ApiErrorBody>("/v1/admin/identities", { username: "alice@example.org" });
    expect(r.status).toBe(403);
    expect(r.body).toMatchObject({ code: "SHARED_BROKER_ACCOUNT", message: oneIdentity });

    const child = spawn(process.execPath, ["--import", "tsx", CLI, "user", "add", "alice@example.org"], {
      env: { ...process.env, CONDUIT_SERVICE_URL: service.url, CONDUIT_TOKEN: service.adminToken },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const [code] = await once(child, "exit");
    expect(code).toBe(1);
    expect(stderr).toBe(`conduit-service: ${oneIdentity}\n`);

    await expect(service.createIdentity("alice@example.org")).rejects.toThrow(oneIdentity);
    expect((await service.store.listIdentities()).map((i) => i.username)).toEqual(["admin@localhost"]);
  });

  it.skipIf(!managementReachable)(
    "refuses to start on a store that holds another identity",
    async () => {
      const db = await createPostgresDatabase();
      try {
        const common = { ...TEST_SERVICE_DEFAULTS, databaseUrl: db.value, amqpUrl: started.amqpUrl };
        const scoped = await startService(common);
        await scoped.createIdentity("alice@example.org");
        await scoped.close();
        await expect(startService({ ...common, sharedBrokerAccount: true })).rejects.toThrow(
          "The store holds identities besides the local administrator (alice@example.org), but --shared-broker-account would hand each of them the service's own RabbitMQ account; start without --shared-broker-account (scoped broker accounts, the default).",
        );
      } finally {
        await db.dispose();
      }
    },
    60_000,
  );
});
