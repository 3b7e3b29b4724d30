/**
 * Hostile input against the logins, as a table, on `conduit-service start` as
 * a real child process (Postgres, so the test can read the signing key and
 * forge tokens the service's own key signed; log level trace): wrong and
 * rotated secrets; expired, tampered, truncated, oversized tokens; another
 * audience or issuer; `alg: none`; replayed authorization and device codes; a
 * code for another client; PKCE mismatch; an unregistered redirect URI; brute
 * force on the login page. Each is refused with 400/401 (429 for the brute
 * force) and one sentence, never a 5xx; the service keeps serving; no secret
 * reaches its log.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { once } from "node:events";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { importJWK, type JWK, type JWTPayload, SignJWT } from "jose";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVhost } from "./helpers/broker.js";
import { createPostgresDatabase, createTempDir } from "./helpers/databases.js";
import {
  authorizeUrl,
  Browser,
  bearerCall,
  CLI_CLIENT,
  CLI_SCOPE,
  codeLogin,
  codeOnPage,
  formAction,
  hiddenInputs,
  pkcePair,
  signIn,
  tokenRequest,
} from "./helpers/oidc-flows.js";

const CLI = fileURLToPath(new URL("../src/cli.ts", import.meta.url));
const ALICE = "alice@example.edu";
const PASSWORD = "a-secret-password-never-logged";

interface Outcome {
  status: number;
  /** The one sentence the refusal carries. */
  sentence: string;
}

describe("hostile input to the logins", () => {
  const disposers: Array<() => Promise<void>> = [];
  let child: ChildProcess;
  let log = "";
  let url: string;
  let adminToken: string;
  let databaseUrl: string;
  let signingJwk: JWK;
  let client: { id: string; secret: string };
  /** Every secret handed out or typed in: none may appear in the log. */
  const secrets: string[] = [PASSWORD];

  beforeAll(async () => {
    const vhost = await createVhost();
    disposers.push(() => vhost.dispose());
    const db = await createPostgresDatabase();
    disposers.push(() => db.dispose());
    databaseUrl = db.value;
    const dir = await createTempDir();
    disposers.push(() => dir.dispose());
    child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        CLI,
        "start",
        "--port",
        "0",
        "--database-url",
        databaseUrl,
        "--amqp-url",
        vhost.value,
        "--log-level",
        "trace",
      ],
      { env: { ...process.env, CONDUIT_USER_DIR: dir.value }, stdio: ["ignore", "pipe", "pipe"] },
    );
    disposers.push(async () => {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await once(child, "exit");
      }
    });
    let stdout = "";
    child.stdout?.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr?.on("data", (d: Buffer) => {
      log += d.toString();
    });
    // Until the "listening" line (or the exit, failing here with its stderr); the hook's timeout bounds it.
    while (!/listening on/.test(stdout)) {
      if (child.exitCode !== null) throw new Error(`conduit-service start exited ${child.exitCode}:\n${log}`);
      await sleep(100);
    }
    url = /listening on (http:\/\/\S+)/.exec(stdout)?.[1] ?? "";
    // The first start wrote credentials.json for admin@localhost, as before logins existed.
    const credentials = JSON.parse(await readFile(join(dir.value, "credentials.json"), "utf8")) as {
      token: string;
      identity: { username: string };
    };
    expect(credentials.identity.username).toBe("admin@localhost");
    adminToken = credentials.token;
    secrets.push(adminToken);

    const add = await api("POST", "/v1/admin/identities", adminToken, { username: ALICE, password: PASSWORD });
    expect(add.status).toBe(201);
    secrets.push(String(add.body.token));
    const made = await api<{ client: { client_id: string }; client_secret: string }>(
      "POST",
      "/v1/admin/clients",
      adminToken,
      { name: "ci-bot" },
    );
    expect(made.status).toBe(201);
    client = { id: made.body.client.client_id, secret: made.body.client_secret };
    secrets.push(client.secret);

    const db2 = new pg.Client({ connectionString: databaseUrl });
    await db2.connect();
    try {
      const { rows } = await db2.query<{ private_jwk: JWK }>(
        "SELECT private_jwk FROM oidc_signing_keys WHERE retired_at IS NULL",
      );
      signingJwk = rows[0].private_jwk;
    } finally {
      await db2.end();
    }
  }, 120_000);

  afterAll(async () => {
    for (const dispose of disposers.reverse()) await dispose();
  });

  function api<T = Record<string, unknown>>(method: string, path: string, token: string, body?: unknown) {
    return bearerCall<T>(url, method, path, token, body);
  }

  /** A bearer token against the API: the status and the error's sentence. */
  async function withToken(token: string): Promise<Outcome> {
    const r = await api<{ message?: string }>("GET", "/v1/whoami", token);
    return { status: r.status, sentence: r.body?.message ?? "" };
  }

  /** A token request: the status and the provider's error_description. */
  async function token(form: Record<string, string>, basic?: { id: string; secret: string }): Promise<Outcome> {
    const r = await tokenRequest(url, form, basic);
    return { status: r.status, sentence: String(r.body.error_description ?? "") };
  }

  /** The sentence of an HTML page's error paragraph. */
  function pageSentence(html: string): string {
    return /<p class="error"[^>]*>([^<]+)<\/p>/.exec(html)?.[1] ?? /<p>([^<]+)<\/p>/.exec(html)?.[1] ?? "";
  }

  async function forge(claims: JWTPayload, key: JWK = signingJwk, alg = "ES256"): Promise<string> {
    const signer = new SignJWT(claims).setProtectedHeader({ alg, typ: "at+jwt", kid: key.kid });
    return signer.sign(await importJWK(key, alg));
  }

  async function aliceId(): Promise<string> {
    const r = await api<Array<{ id: string; username: string }>>("GET", "/v1/admin/identities", adminToken);
    return r.body.find((i) => i.username === ALICE)?.id ?? "";
  }

  /** A code of Alice's login, and its PKCE verifier. */
  async function freshCode(): Promise<{ code: string; verifier: string }> {
    const { verifier, challenge } = pkcePair();
    const landed = await signIn(new Browser(url), authorizeUrl(url, challenge), ALICE, PASSWORD);
    const code = codeOnPage(landed.text);
    secrets.push(code);
    return { code, verifier };
  }

  function exchange(code: string, verifier: string, extra: Record<string, string> = {}) {
    return token({
      grant_type: "authorization_code",
      code,
      redirect_uri: `${url}/login/code`,
      client_id: CLI_CLIENT,
      code_verifier: verifier,
      ...extra,
    });
  }

  const now = () => Math.floor(Date.now() / 1000);
  const claims = async (over: JWTPayload = {}): Promise<JWTPayload> => ({
    iss: url,
    aud: `${url}/v1`,
    sub: await aliceId(),
    jti: "forged",
    client_id: CLI_CLIENT,
    iat: now(),
    exp: now() + 600,
    scope: "conduit",
    ...over,
  });

  const cases: Array<[string, number, () => Promise<Outcome>]> = [
    ["a wrong client secret", 401, () => token({ grant_type: "client_credentials" }, { ...client, secret: "wrong" })],
    [
      "an unknown client id",
      401,
      () =>
        token(
          { grant_type: "client_credentials" },
          { id: "00000000-0000-4000-8000-000000000000", secret: client.secret },
        ),
    ],
    [
      "a rotated (old) client secret",
      401,
      async () => {
        const made = await api<{ client: { client_id: string }; client_secret: string }>(
          "POST",
          "/v1/admin/clients",
          adminToken,
          { name: "rotated" },
        );
        const rotated = await api<{ client_secret: string }>(
          "POST",
          `/v1/admin/clients/${made.body.client.client_id}/secret`,
          adminToken,
        );
        secrets.push(made.body.client_secret, rotated.body.client_secret);
        return token(
          { grant_type: "client_credentials" },
          { id: made.body.client.client_id, secret: made.body.client_secret },
        );
      },
    ],
    ["an expired access token", 401, async () => withToken(await forge(await claims({ exp: now() - 3600 })))],
    [
      "a tampered access token",
      401,
      async () => {
        const good = (await codeLogin(url, ALICE, PASSWORD)).access_token;
        secrets.push(good);
        const [h, p, s] = good.split(".");
        const payload = JSON.parse(Buffer.from(p, "base64url").toString()) as JWTPayload;
        payload.sub = "00000000-0000-4000-8000-000000000000";
        return withToken(`${h}.${Buffer.from(JSON.stringify(payload)).toString("base64url")}.${s}`);
      },
    ],
    [
      "a truncated access token",
      401,
      async () => {
        const good = await forge(await claims());
        return withToken(good.slice(0, good.lastIndexOf(".") + 10));
      },
    ],
    ["an oversized access token", 401, async () => withToken(`${"a".repeat(9000)}.${"b".repeat(3000)}.c`)],
    ["a token for another audience", 401, async () => withToken(await forge(await claims({ aud: "https://else/v1" })))],
    [
      "a token of another issuer (its own key)",
      401,
      async () => {
        const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
        const other = { ...(privateKey.export({ format: "jwk" }) as JWK), kid: "other" };
        return withToken(await forge(await claims({ iss: "https://evil.example" }), other));
      },
    ],
    [
      "a token naming this issuer but signed by another key",
      401,
      async () => {
        const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
        return withToken(await forge(await claims(), { ...(privateKey.export({ format: "jwk" }) as JWK), kid: "x" }));
      },
    ],
    [
      "alg: none",
      401,
      async () => {
        const header = Buffer.from(JSON.stringify({ alg: "none", typ: "at+jwt" })).toString("base64url");
        const body = Buffer.from(JSON.stringify(await claims())).toString("base64url");
        return withToken(`${header}.${body}.`);
      },
    ],
    [
      "a replayed authorization code",
      400,
      async () => {
        const { code, verifier } = await freshCode();
        expect((await exchange(code, verifier)).status).toBe(200);
        return exchange(code, verifier);
      },
    ],
    [
      "a code for another client",
      400,
      async () => {
        const { code, verifier } = await freshCode();
        return token(
          { grant_type: "authorization_code", code, redirect_uri: `${url}/login/code`, code_verifier: verifier },
          client,
        );
      },
    ],
    [
      "a PKCE mismatch",
      400,
      async () => {
        const { code } = await freshCode();
        return exchange(code, pkcePair().verifier);
      },
    ],
    [
      "a replayed device code",
      400,
      async () => {
        const start = await fetch(`${url}/oidc/device/auth`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({ client_id: CLI_CLIENT, scope: CLI_SCOPE }).toString(),
        });
        const device = (await start.json()) as Record<string, string>;
        secrets.push(device.device_code);
        const browser = new Browser(url);
        // The link with the code is a form posting itself (a Continue button without JavaScript), then the confirmation.
        const callback = await browser.follow(device.verification_uri_complete);
        const confirm = await browser.request(formAction(callback.text), { form: hiddenInputs(callback.text) });
        expect(confirm.text).toContain(device.user_code);
        const toLogin = await browser.request(formAction(confirm.text), { form: hiddenInputs(confirm.text) });
        const login = await browser.follow(toLogin.location ?? "", toLogin);
        const posted = await browser.request(formAction(login.text), { form: { username: ALICE, password: PASSWORD } });
        await browser.follow(posted.location ?? "", posted);
        const grant = { grant_type: "urn:ietf:params:oauth:grant-type:device_code", device_code: device.device_code };
        expect((await token({ ...grant, client_id: CLI_CLIENT })).status).toBe(200);
        return token({ ...grant, client_id: CLI_CLIENT });
      },
    ],
    [
      "an unregistered redirect URI",
      400,
      async () => {
        const page = await new Browser(url).request(
          authorizeUrl(url, pkcePair().challenge, { redirect_uri: "https://evil.example/cb" }),
        );
        expect(page.location).toBeUndefined();
        return { status: page.status, sentence: pageSentence(page.text) };
      },
    ],
    [
      "a wrong password",
      401,
      async () => {
        const page = await signIn(new Browser(url), authorizeUrl(url, pkcePair().challenge), ALICE, "wrong password");
        return { status: page.status, sentence: pageSentence(page.text) };
      },
    ],
    [
      "brute force on the login page",
      429,
      async () => {
        const victim = "victim@example.edu";
        await api("POST", "/v1/admin/identities", adminToken, { username: victim, password: "victim's password" });
        let last: Outcome = { status: 0, sentence: "" };
        for (let i = 0; i < 6; i++) {
          const page = await signIn(new Browser(url), authorizeUrl(url, pkcePair().challenge), victim, `guess ${i}`);
          last = { status: page.status, sentence: pageSentence(page.text) };
        }
        // Even the right password waits now.
        const right = await signIn(
          new Browser(url),
          authorizeUrl(url, pkcePair().challenge),
          victim,
          "victim's password",
        );
        expect(right.status).toBe(429);
        return last;
      },
    ],
  ];

  it.each(cases)("refuses %s with %i and one sentence", async (_name, status, run) => {
    const outcome = await run();
    expect(outcome.status, outcome.sentence).toBe(status);
    expect(outcome.sentence.length).toBeGreaterThan(10);
    expect(outcome.sentence.trim().split(/(?<=[.;])\s+(?=[A-Z])/)).toHaveLength(1);
    // And keeps serving.
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });

  it("still logs in afterwards, and no secret reached the log", async () => {
    const tokens = await codeLogin(url, ALICE, PASSWORD);
    secrets.push(tokens.access_token, tokens.refresh_token ?? "");
    expect((await withToken(tokens.access_token)).status).toBe(200);
    expect(log).not.toMatch(/"level":(50|60)/);
    for (const secret of secrets.filter((s) => s.length >= 8)) expect(log).not.toContain(secret);
  });
});
