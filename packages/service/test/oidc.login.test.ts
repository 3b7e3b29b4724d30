/**
 * The OpenID provider of the service, over real HTTP on both stores: discovery,
 * the link-and-code login (authorization code + PKCE, the code shown on
 * /login/code), the device flow, refresh (rotated), revocation through the
 * deny-list, `keys rotate`, and that the API records the logged-in identity
 * (an endpoint's owner), not admin@localhost.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningService, startService } from "../src/index.js";
import { createVhost } from "./helpers/broker.js";
import { createPostgresDatabase, createTempDir } from "./helpers/databases.js";
import {
  Browser,
  bearerCall,
  CLI_CLIENT,
  CLI_SCOPE,
  codeLogin,
  formAction,
  hiddenInputs,
  jwtHeader,
  jwtPayload,
  type TokenSet,
  tokenRequest,
} from "./helpers/oidc-flows.js";

const backends = [
  { name: "PGlite", store: async () => createTempDir().then((d) => ({ ...d, options: { dataDir: d.value } })) },
  {
    name: "Postgres",
    store: async () => createPostgresDatabase().then((d) => ({ ...d, options: { databaseUrl: d.value } })),
  },
];

const ALICE = "alice@example.edu";
const ALICE_PASSWORD = "correct horse battery staple";
const BOB = "bob@example.edu";
const BOB_PASSWORD = "another long password";

describe.each(backends)("OpenID provider on $name", (backend) => {
  const disposers: Array<() => Promise<void>> = [];
  let service: RunningService;

  beforeAll(async () => {
    const vhost = await createVhost();
    disposers.push(() => vhost.dispose());
    const store = await backend.store();
    disposers.push(() => store.dispose());
    service = await startService({
      port: 0,
      ...store.options,
      amqpUrl: vhost.value,
      writeCredentials: false,
      logLevel: "silent",
    });
    disposers.push(() => service.close());
    for (const [username, password] of [
      [ALICE, ALICE_PASSWORD],
      [BOB, BOB_PASSWORD],
    ]) {
      const r = await api("POST", "/v1/admin/identities", service.adminToken, { username, password });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
    }
  }, 60_000);

  afterAll(async () => {
    for (const dispose of disposers.reverse()) await dispose();
  });

  function api<T = Record<string, unknown>>(method: string, path: string, token: string, body?: unknown) {
    return bearerCall<T>(service.url, method, path, token, body);
  }

  async function identityId(username: string): Promise<string> {
    const identity = await service.store.findIdentityByUsername(username);
    if (!identity) throw new Error(`no ${username}`);
    return identity.id;
  }

  it("publishes discovery with the service's URL as issuer and its routes under /oidc", async () => {
    const r = await fetch(`${service.url}/.well-known/openid-configuration`);
    expect(r.status).toBe(200);
    const doc = (await r.json()) as Record<string, unknown>;
    expect(doc.issuer).toBe(service.url);
    expect(doc.authorization_endpoint).toBe(`${service.url}/oidc/auth`);
    expect(doc.token_endpoint).toBe(`${service.url}/oidc/token`);
    expect(doc.device_authorization_endpoint).toBe(`${service.url}/oidc/device/auth`);
    expect(doc.grant_types_supported).toEqual(
      expect.arrayContaining([
        "authorization_code",
        "refresh_token",
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:device_code",
      ]),
    );
    const jwks = (await (await fetch(`${service.url}/oidc/jwks`)).json()) as { keys: Record<string, unknown>[] };
    expect(jwks.keys.length).toBeGreaterThan(0);
    for (const key of jwks.keys) expect(key.d).toBeUndefined();
  });

  let aliceTokens: TokenSet;

  it("logs in with link and code: the API then acts as that user, and records her login", async () => {
    aliceTokens = await codeLogin(service.url, ALICE, ALICE_PASSWORD);
    expect(aliceTokens.access_token.split(".")).toHaveLength(3);
    expect(typeof aliceTokens.refresh_token).toBe("string");
    const claims = jwtPayload(aliceTokens.access_token);
    expect(claims).toMatchObject({
      iss: service.url,
      aud: `${service.url}/v1`,
      sub: await identityId(ALICE),
      client_id: CLI_CLIENT,
      scope: "conduit",
    });
    expect(jwtHeader(aliceTokens.access_token)).toMatchObject({ alg: "ES256", typ: "at+jwt" });
    expect(aliceTokens.expires_in).toBeLessThanOrEqual(3600);

    const who = await api<{ username: string }>("GET", "/v1/whoami", aliceTokens.access_token);
    expect(who.status).toBe(200);
    expect(who.body.username).toBe(ALICE);
    // What the service records is hers: the endpoint she registers is owned by her, not by the admin.
    const reg = await api<{ endpoint_id: string }>("POST", "/v1/endpoints", aliceTokens.access_token, { name: "ep" });
    expect(reg.status, JSON.stringify(reg.body)).toBe(200);
    const endpoint = await service.store.getEndpoint(reg.body.endpoint_id);
    expect(endpoint?.ownerId).toBe(await identityId(ALICE));

    const logins = await service.authStore.logins(await identityId(ALICE));
    expect(logins[0]).toMatchObject({ method: "password" });
    expect(logins[0].authTime).toBeInstanceOf(Date);
  });

  it("keeps two logged-in users apart: Bob cannot see Alice's endpoint", async () => {
    const bob = await codeLogin(service.url, BOB, BOB_PASSWORD);
    const mine = await api<{ endpoint_id: string }>("POST", "/v1/endpoints", aliceTokens.access_token, {
      name: "private",
    });
    const seen = await api("GET", `/v1/endpoints/${mine.body.endpoint_id}`, bob.access_token);
    expect([403, 404]).toContain(seen.status);
    const list = await api<Array<{ id?: string; endpoint_id?: string }>>("GET", "/v1/endpoints", bob.access_token);
    expect(list.status).toBe(200);
    expect(JSON.stringify(list.body)).not.toContain(mine.body.endpoint_id);
  });

  it("refreshes with a rotated refresh token; replaying the old one revokes the login within the deny-list's staleness", async () => {
    const login = await codeLogin(service.url, ALICE, ALICE_PASSWORD);
    const refreshed = await tokenRequest(service.url, {
      grant_type: "refresh_token",
      refresh_token: login.refresh_token ?? "",
      client_id: CLI_CLIENT,
    });
    expect(refreshed.status, JSON.stringify(refreshed.body)).toBe(200);
    const next = refreshed.body as unknown as TokenSet;
    expect(next.refresh_token).not.toBe(login.refresh_token);
    expect((await api("GET", "/v1/whoami", next.access_token)).status).toBe(200);

    const replay = await tokenRequest(service.url, {
      grant_type: "refresh_token",
      refresh_token: login.refresh_token ?? "",
      client_id: CLI_CLIENT,
    });
    expect(replay.status).toBe(400);
    expect(replay.body.error).toBe("invalid_grant");
    // The replay revoked the grant: its access tokens stop working once the deny-list is read again (≤ 5 s).
    let status = 200;
    while (status === 200) {
      status = (await api("GET", "/v1/whoami", next.access_token)).status;
      if (status === 200) await sleep(250);
    }
    const refused = await api<{ message: string }>("GET", "/v1/whoami", next.access_token);
    expect(refused.status).toBe(401);
    expect(refused.body.message).toMatch(/revoked/);
    // Another login of the same user is not affected.
    expect((await api("GET", "/v1/whoami", aliceTokens.access_token)).status).toBe(200);
  });

  it("logs out by revoking the refresh token: it stops refreshing, and its access tokens stop within 5 s", async () => {
    const login = await codeLogin(service.url, BOB, BOB_PASSWORD);
    expect((await api("GET", "/v1/whoami", login.access_token)).status).toBe(200);
    const revoked = await fetch(`${service.url}/oidc/token/revocation`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        token: login.refresh_token ?? "",
        token_type_hint: "refresh_token",
        client_id: CLI_CLIENT,
      }).toString(),
    });
    expect(revoked.status).toBe(200);
    const refresh = await tokenRequest(service.url, {
      grant_type: "refresh_token",
      refresh_token: login.refresh_token ?? "",
      client_id: CLI_CLIENT,
    });
    expect(refresh.status).toBe(400);
    let status = 200;
    while (status === 200) {
      status = (await api("GET", "/v1/whoami", login.access_token)).status;
      if (status === 200) await sleep(250);
    }
    expect(status).toBe(401);
  });

  it("logs in with the device flow; the device code works once", async () => {
    const start = await fetch(`${service.url}/oidc/device/auth`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ client_id: CLI_CLIENT, scope: CLI_SCOPE }).toString(),
    });
    expect(start.status).toBe(200);
    const device = (await start.json()) as Record<string, string>;
    expect(device.verification_uri).toBe(`${service.url}/oidc/device`);

    const pending = await tokenRequest(service.url, {
      grant_type: "urn:ietf:params:oauth:grant-type:device_code",
      device_code: device.device_code,
      client_id: CLI_CLIENT,
    });
    expect(pending.status).toBe(400);
    expect(pending.body.error).toBe("authorization_pending");

    const browser = new Browser(service.url);
    const input = await browser.follow(device.verification_uri);
    expect(input.status).toBe(200);
    const confirm = await browser.request(formAction(input.text), {
      form: { ...hiddenInputs(input.text), user_code: device.user_code },
    });
    expect(confirm.status, confirm.text).toBe(200);
    const toLogin = await browser.request(formAction(confirm.text), { form: hiddenInputs(confirm.text) });
    const login = await browser.follow(toLogin.location ?? "", toLogin);
    expect(login.status, login.text).toBe(200);
    const posted = await browser.request(formAction(login.text), {
      form: { username: BOB, password: BOB_PASSWORD },
    });
    const done = await browser.follow(posted.location ?? "", posted);
    expect(done.status, done.text).toBe(200);
    expect(done.text).toContain("Device signed in");

    const tokens = await tokenRequest(service.url, {
      grant_type: "urn:ietf:params:oauth:grant-type:device_code",
      device_code: device.device_code,
      client_id: CLI_CLIENT,
    });
    expect(tokens.status, JSON.stringify(tokens.body)).toBe(200);
    const who = await api<{ username: string }>("GET", "/v1/whoami", String(tokens.body.access_token));
    expect(who.body.username).toBe(BOB);
    expect(typeof tokens.body.refresh_token).toBe("string");

    const replay = await tokenRequest(service.url, {
      grant_type: "urn:ietf:params:oauth:grant-type:device_code",
      device_code: device.device_code,
      client_id: CLI_CLIENT,
    });
    expect(replay.status).toBe(400);
    expect(replay.body.error).toBe("invalid_grant");
  });

  it("rotates signing keys: tokens of the old key keep working, new ones are signed by the new key", async () => {
    const before = await codeLogin(service.url, ALICE, ALICE_PASSWORD);
    const oldKid = jwtHeader(before.access_token).kid;
    const r = await api<{ kid: string; retired: string[] }>("POST", "/v1/admin/keys/rotate", service.adminToken);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.retired).toEqual([oldKid]);
    const after = await codeLogin(service.url, ALICE, ALICE_PASSWORD);
    expect(jwtHeader(after.access_token).kid).toBe(r.body.kid);
    expect((await api("GET", "/v1/whoami", before.access_token)).status).toBe(200);
    expect((await api("GET", "/v1/whoami", after.access_token)).status).toBe(200);
    const jwks = (await (await fetch(`${service.url}/oidc/jwks`)).json()) as { keys: Array<{ kid: string }> };
    expect(jwks.keys.map((k) => k.kid)).toEqual(expect.arrayContaining([oldKid, r.body.kid]));
    // Only the admin rotates keys.
    expect((await api("POST", "/v1/admin/keys/rotate", after.access_token)).status).toBe(403);
  });

  it("keeps the admin-made opaque tokens working beside JWTs", async () => {
    const who = await api<{ username: string }>("GET", "/v1/whoami", service.adminToken);
    expect(who.status).toBe(200);
    expect(who.body.username).toBe("admin@localhost");
  });
});
