import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningService, startService } from "../src/index.js";
import { createVhost } from "./helpers/broker.js";
import { createTempDir } from "./helpers/databases.js";
import { bearerCall, codeLogin, jwtPayload, tokenRequest } from "./helpers/oidc-flows.js";
import { type Ran, runServiceCli } from "./helpers/run.js";

describe("client identities and login administration", () => {
  const disposers: Array<() => Promise<void>> = [];
  let service: RunningService;
  let userDir: string;

  beforeAll(async () => {
    const vhost = await createVhost();
    disposers.push(() => vhost.dispose());
    const dir = await createTempDir();
    disposers.push(() => dir.dispose());
    userDir = dir.value;
    service = await startService({
      port: 0,
      dataDir: join(dir.value, "service"),
      amqpUrl: vhost.value,
      writeCredentials: false,
      logLevel: "silent",
    });
    disposers.push(() => service.close());
  }, 60_000);

  afterAll(async () => {
    for (const dispose of disposers.reverse()) await dispose();
  });

  function cli(args: string[], stdin?: string): Promise<Ran> {
    const env = {
      ...process.env,
      CONDUIT_USER_DIR: userDir,
      CONDUIT_SERVICE_URL: service.url,
      CONDUIT_TOKEN: service.adminToken,
    };
    return runServiceCli(args, env, stdin);
  }

  function api<T = Record<string, unknown>>(method: string, path: string, token: string, body?: unknown) {
    return bearerCall<T>(service.url, method, path, token, body);
  }

  /** The id and secret `client create` / `rotate-secret` print on their export lines. */
  function printedClient(stdout: string): { id: string; secret: string } {
    const id = /^export CONDUIT_CLIENT_ID=(.+)$/m.exec(stdout)?.[1];
    const secret = /^export CONDUIT_CLIENT_SECRET=(.+)$/m.exec(stdout)?.[1];
    if (!id || !secret) throw new Error(`no client id and secret in:\n${stdout}`);
    return { id, secret };
  }

  function clientCredentials(id: string, secret: string) {
    return tokenRequest(service.url, { grant_type: "client_credentials", scope: "conduit" }, { id, secret });
  }

  it("user add --password-stdin makes a local account that can log in; the password is never printed", async () => {
    const password = "a password from stdin";
    const ran = await cli(["user", "add", "carol@example.edu", "--password-stdin"], `${password}\n`);
    expect(ran.stderr).toBe("");
    expect(ran.code).toBe(0);
    expect(ran.stdout).not.toContain(password);
    const tokens = await codeLogin(service.url, "carol@example.edu", password);
    const who = await api<{ username: string }>("GET", "/v1/whoami", tokens.access_token);
    expect(who.body.username).toBe("carol@example.edu");

    const short = await cli(["user", "add", "dave@example.edu", "--password-stdin"], "short\n");
    expect(short.code).toBe(1);
    expect(short.stderr).toMatch(/password must be 8 to 1024 characters/);
    expect(short.stderr).not.toContain("short\n");
  });

  it("client create prints an id and secret once; client credentials give a JWT acting as the client", async () => {
    const ran = await cli(["client", "create", "--name", "ci-bot", "--owner", "carol@example.edu"]);
    expect(ran.stderr).toBe("");
    expect(ran.code).toBe(0);
    const { id, secret } = printedClient(ran.stdout);
    expect(ran.stdout).toContain(`${id}@clients.conduit`);

    const r = await clientCredentials(id, secret);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const token = String(r.body.access_token);
    expect(jwtPayload(token)).toMatchObject({ sub: id, client_id: id, aud: `${service.url}/v1` });
    expect(r.body.refresh_token).toBeUndefined();
    const who = await api<{ username: string; id: string }>("GET", "/v1/whoami", token);
    expect(who.body).toMatchObject({ id, username: `${id}@clients.conduit` });
    // What it registers is its own, not the admin's nor its owner's.
    const reg = await api<{ endpoint_id: string }>("POST", "/v1/endpoints", token, { name: "bot-ep" });
    expect(reg.status, JSON.stringify(reg.body)).toBe(200);
    expect((await service.store.getEndpoint(reg.body.endpoint_id))?.ownerId).toBe(id);
    const logins = await service.authStore.logins(id);
    expect(logins[0]).toMatchObject({ method: "client_credentials" });

    const list = await cli(["client", "list"]);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`ci-bot +\\| ${id} +\\| carol@example.edu`));
    expect(list.stdout).not.toContain(secret);
  });

  it("rotate-secret stops the old secret at once; a wrong secret is 401 invalid_client", async () => {
    const { id, secret } = printedClient((await cli(["client", "create", "--name", "rotating"])).stdout);
    const rotated = await cli(["client", "rotate-secret", id]);
    expect(rotated.code).toBe(0);
    const fresh = printedClient(rotated.stdout);
    expect(fresh.secret).not.toBe(secret);
    const old = await clientCredentials(id, secret);
    expect(old.status).toBe(401);
    expect(old.body.error).toBe("invalid_client");
    expect((await clientCredentials(id, fresh.secret)).status).toBe(200);
    expect((await clientCredentials(id, `${fresh.secret}x`)).status).toBe(401);
  });

  it("client remove takes the identity along: its tokens stop within the identity cache's staleness", async () => {
    const { id, secret } = printedClient((await cli(["client", "create", "--name", "doomed"])).stdout);
    const token = String((await clientCredentials(id, secret)).body.access_token);
    await api("POST", "/v1/endpoints", token, { name: "doomed-ep" });
    const refused = await cli(["client", "remove", id]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/owns 1 endpoint/);
    const removed = await cli(["client", "remove", id, "--force"]);
    expect(removed.stderr).toBe("");
    expect(removed.stdout).toContain(`Removed client identity doomed (${id}), 1 endpoint and 0 tasks.`);
    expect(await service.store.getIdentity(id)).toBeUndefined();
    expect((await clientCredentials(id, secret)).status).toBe(401);
    let status = 200;
    while (status === 200) {
      status = (await api("GET", "/v1/whoami", token)).status;
      if (status === 200) await sleep(250);
    }
    expect(status).toBe(401);
    const gone = await cli(["client", "remove", id]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/There is no client identity/);
  });

  it("keys rotate prints the new key and the one it retired", async () => {
    const ran = await cli(["keys", "rotate"]);
    expect(ran.stderr).toBe("");
    expect(ran.stdout).toMatch(/^New signing key \S+; \S+ verifies until \S+Z\.\n$/);
  });
});

describe("client identities under --shared-broker-account", () => {
  it("are refused, as other users are", async () => {
    const vhost = await createVhost();
    const dir = await createTempDir();
    const service = await startService({
      port: 0,
      dataDir: dir.value,
      amqpUrl: vhost.value,
      sharedBrokerAccount: true,
      writeCredentials: false,
      logLevel: "silent",
    });
    try {
      const r = await fetch(`${service.url}/v1/admin/clients`, {
        method: "POST",
        headers: { authorization: `Bearer ${service.adminToken}`, "content-type": "application/json" },
        body: JSON.stringify({ name: "ci-bot" }),
      });
      expect(r.status).toBe(403);
      expect(((await r.json()) as { code: string }).code).toBe("SHARED_BROKER_ACCOUNT");
    } finally {
      await service.close();
      await dir.dispose();
      await vhost.dispose();
    }
  }, 60_000);
});
