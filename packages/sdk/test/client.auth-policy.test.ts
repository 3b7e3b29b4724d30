/**
 * The Client against an endpoint's authentication policy, with the service in
 * this process and its clock moved by the test: a client identity
 * (CONDUIT_CLIENT_ID/SECRET) whose login grew older than the policy's timeout
 * logs in again once (a new client credentials grant, recorded by the
 * service) and the call goes through; a policy no new login can meet fails
 * with one AuthPolicyUnmetError after exactly one new login; a fixed token
 * cannot log in again and says so; a cached login without a terminal fails at
 * once, naming the login command.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JSON_DATA, SOURCE_CODE } from "@conduit/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codeLogin } from "../../service/test/helpers/oidc-flows.js";
import { AuthPolicyUnmetError, Client } from "../src/index.js";
import { type InProcessService, startInProcessService } from "./stack.helpers.js";

const ENV_NAMES = ["CONDUIT_USER_DIR", "CONDUIT_TOKEN", "CONDUIT_CLIENT_ID", "CONDUIT_CLIENT_SECRET"] as const;

describe("the Client's new login and retry on a 403 AUTH_POLICY_UNMET", () => {
  let now = Date.now();
  let running: InProcessService;
  let clientId: string;
  let projectId: string;
  const saved = new Map<string, string | undefined>();
  const userDir = mkdtempSync(join(tmpdir(), "conduit-sdk-policy-"));

  const admin = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const response = await fetch(`${running.service.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${running.service.adminToken}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(response.status).toBeLessThan(300);
    return (await response.json()) as T;
  };

  beforeAll(async () => {
    running = await startInProcessService({ clock: () => now });
    const made = await admin<{ client: { client_id: string }; client_secret: string }>("POST", "/v1/admin/clients", {
      name: "policy-bot",
    });
    clientId = made.client.client_id;
    for (const name of ENV_NAMES) saved.set(name, process.env[name]);
    delete process.env.CONDUIT_TOKEN;
    process.env.CONDUIT_USER_DIR = userDir;
    process.env.CONDUIT_CLIENT_ID = clientId;
    process.env.CONDUIT_CLIENT_SECRET = made.client_secret;
    projectId = (await admin<{ id: string }>("POST", "/v1/projects", { display_name: "SDK" })).id;
  }, 120_000);

  afterAll(async () => {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    await running?.stop();
    rmSync(userDir, { recursive: true, force: true });
  });

  async function policy(body: Record<string, unknown>): Promise<string> {
    return (
      await admin<{ id: string }>("POST", "/v1/auth_policies", { project_id: projectId, display_name: "P", ...body })
    ).id;
  }

  /** A Client of the client identity, its endpoint naming the policy, and a submit of one task. */
  async function guarded(client: Client, policyId: string) {
    const { endpoint_id: endpointId } = await client.registerEndpoint({ name: "ep", authentication_policy: policyId });
    const functionId = await client.registerFunction({ strategy: SOURCE_CODE, data: "(x) => x" });
    return () =>
      client.submit(endpointId, {
        tasks: [{ task_id: crypto.randomUUID(), function_id: functionId, args: { strategy: JSON_DATA, data: "[1]" } }],
      });
  }

  const logins = async () => (await running.service.authStore.logins(clientId)).length;

  it("logs in again once when the last login is older than the timeout, and the retried call goes through", async () => {
    const client = new Client({ serviceUrl: running.service.url, retries: 0 });
    const submit = await guarded(client, await policy({ authentication_assurance_timeout: 120 }));
    await submit();
    const before = await logins();
    now += 181_000;
    const submitted = await submit();
    expect(submitted.task_ids).toHaveLength(1);
    expect(await logins()).toBe(before + 1);
  });

  it("fails with one AuthPolicyUnmetError naming the constraint after exactly one new login", async () => {
    const client = new Client({ serviceUrl: running.service.url, retries: 0 });
    const policyId = await policy({ domain_constraints_include: ["example.edu"] });
    const submit = await guarded(client, policyId);
    const before = await logins();
    const err = await submit().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthPolicyUnmetError);
    const refused = err as AuthPolicyUnmetError;
    expect(refused.code).toBe("AUTH_POLICY_UNMET");
    expect(refused.message).toBe(
      `The service still refused this call after a new login with CONDUIT_CLIENT_ID and CONDUIT_CLIENT_SECRET: Authentication policy "P" (${policyId}) admits only identities of example.edu, and ${clientId}@clients.conduit is of clients.conduit; log in with an identity of one of those domains.`,
    );
    expect(refused.authorizationParameters).toMatchObject({
      session_required_policies: [policyId],
      session_required_single_domain: ["example.edu"],
    });
    expect(await logins()).toBe(before + 1);
  });

  it("says that a fixed token cannot log in again by itself", async () => {
    const { token } = await running.service.createIdentity("ivy@example.org");
    const client = new Client({ serviceUrl: running.service.url, token, retries: 0 });
    const policyId = await policy({ domain_constraints_include: ["*.edu"] });
    const submit = await guarded(client, policyId);
    const err = await submit().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthPolicyUnmetError);
    expect((err as Error).message).toBe(
      `Authentication policy "P" (${policyId}) admits only identities of *.edu, and ivy@example.org is of example.org; log in with an identity of one of those domains (the Client's token option cannot log in again by itself).`,
    );
  });

  it("fails at once with a cached login and no terminal, naming the login command", async () => {
    const password = "correct horse battery staple";
    await admin("POST", "/v1/admin/identities", { username: "una@example.org", password });
    const login = await codeLogin(running.service.url, "una@example.org", password);
    writeFileSync(
      join(userDir, "tokens.json"),
      JSON.stringify({
        version: 1,
        logins: {
          [running.service.url]: {
            access_token: login.access_token,
            refresh_token: login.refresh_token,
            expires_at: Date.now() + 3_600_000,
          },
        },
      }),
      { mode: 0o600 },
    );
    const pair = [process.env.CONDUIT_CLIENT_ID, process.env.CONDUIT_CLIENT_SECRET];
    delete process.env.CONDUIT_CLIENT_ID;
    delete process.env.CONDUIT_CLIENT_SECRET;
    try {
      const client = new Client({ serviceUrl: running.service.url, retries: 0, interactiveLogin: false });
      const policyId = await policy({ authentication_assurance_timeout: 120 });
      const submit = await guarded(client, policyId);
      await submit();
      now += 181_000;
      const err = await submit().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AuthPolicyUnmetError);
      expect((err as Error).message).toMatch(
        /^Authentication policy "P" \(.+\) .+ \(no terminal is here for a new login: run `npx conduit login` on one, then call again\)\.$/,
      );
    } finally {
      [process.env.CONDUIT_CLIENT_ID, process.env.CONDUIT_CLIENT_SECRET] = pair;
      rmSync(join(userDir, "tokens.json"), { force: true });
    }
  });
});
