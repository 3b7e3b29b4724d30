/**
 * The one credential order (client pair, CONDUIT_TOKEN, cached login,
 * credentials.json for this service), its refusals of half-set and
 * conflicting client pairs, and renewal: client-credential tokens fetched
 * again, a login refreshed with its rotated refresh token, and a 401 renewed
 * once and retried once — all against a fake OAuth provider on node:http.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  type CachedLogin,
  type Credential,
  fetchIdentity,
  type LoginIo,
  obtainCredential,
  readLogin,
  requestWithCredential,
  resolveCredential,
} from "../src/index.js";
import { saveLogin } from "../src/token-store.js";
import { codeFromPage, type FakeOAuth, printedLink, startFakeOAuth } from "./fake-oauth.helpers.js";

let fake: FakeOAuth;
let userDir: string;
const savedUserDir = process.env.CONDUIT_USER_DIR;

beforeEach(async () => {
  fake = await startFakeOAuth();
  fake.clients.set("ci-bot-id", { secret: "s3cret", username: "ci-bot@clients" });
  userDir = mkdtempSync(join(tmpdir(), "conduit-creds-"));
  process.env.CONDUIT_USER_DIR = userDir;
});

afterEach(async () => {
  await fake.close();
  rmSync(userDir, { recursive: true, force: true });
  if (savedUserDir === undefined) delete process.env.CONDUIT_USER_DIR;
  else process.env.CONDUIT_USER_DIR = savedUserDir;
});

const opts = (env: NodeJS.ProcessEnv) => ({ serviceUrl: fake.url, loginCommand: "conduit-endpoint login", env });

function writeCredentialsFile(serviceUrl: string, token: string): void {
  writeFileSync(
    join(userDir, "credentials.json"),
    JSON.stringify({ service_url: serviceUrl, token, identity: { id: "x", username: "admin@localhost" } }),
  );
}

describe("the credential order", () => {
  it("a client pair wins over CONDUIT_TOKEN, the cached login and credentials.json", async () => {
    writeCredentialsFile(fake.url, "file-token");
    saveLogin(fake.url, { access_token: "cached", expires_at: Date.now() + 3_600_000 });
    for (const [id, secret] of [
      ["CONDUIT_CLIENT_ID", "CONDUIT_CLIENT_SECRET"],
      ["GLOBUS_COMPUTE_CLIENT_ID", "GLOBUS_COMPUTE_CLIENT_SECRET"],
    ] as const) {
      const credential = resolveCredential(opts({ [id]: "ci-bot-id", [secret]: "s3cret", CONDUIT_TOKEN: "env" }));
      expect(credential?.kind).toBe("client");
      expect(credential?.origin).toBe(`${id} and ${secret}`);
      const me = await fetchIdentity(fake.url, credential as Credential);
      expect(me.username).toBe("ci-bot@clients");
    }
    const basic = fake.requests.filter((r) => r.form.grant_type === "client_credentials");
    expect(basic).toHaveLength(2);
    expect(basic[0]?.authorization).toBe(`Basic ${Buffer.from("ci-bot-id:s3cret").toString("base64")}`);
  });

  it("both pairs naming the same client are one client; different clients, or half a pair, are refused by name", () => {
    const same = resolveCredential(
      opts({
        CONDUIT_CLIENT_ID: "a",
        CONDUIT_CLIENT_SECRET: "b",
        GLOBUS_COMPUTE_CLIENT_ID: "a",
        GLOBUS_COMPUTE_CLIENT_SECRET: "b",
      }),
    );
    expect(same?.kind).toBe("client");
    expect(() =>
      resolveCredential(
        opts({
          CONDUIT_CLIENT_ID: "a",
          CONDUIT_CLIENT_SECRET: "b",
          GLOBUS_COMPUTE_CLIENT_ID: "a",
          GLOBUS_COMPUTE_CLIENT_SECRET: "other",
        }),
      ),
    ).toThrow(
      "CONDUIT_CLIENT_ID and CONDUIT_CLIENT_SECRET name a different client than GLOBUS_COMPUTE_CLIENT_ID and GLOBUS_COMPUTE_CLIENT_SECRET; unset one of the two pairs.",
    );
    expect(() => resolveCredential(opts({ CONDUIT_CLIENT_ID: "a", CONDUIT_TOKEN: "t" }))).toThrow(
      "CONDUIT_CLIENT_ID is set but CONDUIT_CLIENT_SECRET is not; set both to a client identity's id and secret, or unset CONDUIT_CLIENT_ID.",
    );
    expect(() => resolveCredential(opts({ GLOBUS_COMPUTE_CLIENT_SECRET: "b" }))).toThrow(
      "GLOBUS_COMPUTE_CLIENT_SECRET is set but GLOBUS_COMPUTE_CLIENT_ID is not; set both to a client identity's id and secret, or unset GLOBUS_COMPUTE_CLIENT_SECRET.",
    );
  });

  it("CONDUIT_TOKEN beats the cached login, which beats credentials.json", async () => {
    writeCredentialsFile(fake.url, "file-token");
    saveLogin(fake.url, { access_token: "cached", expires_at: Date.now() + 3_600_000 });
    const fromEnv = resolveCredential(opts({ CONDUIT_TOKEN: "env-token" }));
    expect([fromEnv?.kind, await fromEnv?.accessToken()]).toEqual(["token", "env-token"]);
    const fromLogin = resolveCredential(opts({}));
    expect([fromLogin?.kind, await fromLogin?.accessToken()]).toEqual(["login", "cached"]);
    rmSync(join(userDir, "tokens.json"));
    const fromFile = resolveCredential(opts({}));
    expect([fromFile?.kind, await fromFile?.accessToken()]).toEqual(["credentials_file", "file-token"]);
  });

  it("credentials.json for another service is skipped, and the error says so with the two ways out", async () => {
    writeCredentialsFile("http://127.0.0.1:1", "file-token");
    saveLogin("http://127.0.0.1:2", { access_token: "other-service", expires_at: Date.now() + 3_600_000 });
    expect(resolveCredential(opts({}))).toBeUndefined();
    await expect(obtainCredential({ ...opts({}), interactive: false })).rejects.toThrow(
      `No credentials for the Conduit service at ${fake.url} (${join(userDir, "credentials.json")} is for http://127.0.0.1:1): run \`conduit-endpoint login\` on a terminal, or set CONDUIT_CLIENT_ID and CONDUIT_CLIENT_SECRET to a client identity's id and secret.`,
    );
  });

  it("a wrong client secret is refused with the variables' names", async () => {
    const credential = resolveCredential(opts({ CONDUIT_CLIENT_ID: "ci-bot-id", CONDUIT_CLIENT_SECRET: "wrong" }));
    await expect(credential?.accessToken()).rejects.toThrow(
      `The Conduit service at ${fake.url} refused the client credentials in CONDUIT_CLIENT_ID and CONDUIT_CLIENT_SECRET (invalid_client: fake: invalid_client); check them, or ask its administrator for a new secret (conduit-service client rotate-secret).`,
    );
  });
});

describe("renewal", () => {
  async function loginTokens(username: string): Promise<void> {
    fake.loginAs = username;
    const device = (await (
      await fetch(`${fake.url}/device/auth`, {
        method: "POST",
        body: new URLSearchParams({ client_id: "conduit-cli" }),
      })
    ).json()) as { device_code: string };
    const tokens = (await (
      await fetch(`${fake.url}/token`, {
        method: "POST",
        body: new URLSearchParams({
          grant_type: "urn:ietf:params:oauth:grant-type:device_code",
          device_code: device.device_code,
        }),
      })
    ).json()) as { access_token: string; refresh_token: string; expires_in: number };
    saveLogin(fake.url, {
      access_token: tokens.access_token,
      refresh_token: tokens.refresh_token,
      expires_at: Date.now() + tokens.expires_in * 1000,
    });
  }

  it("a login whose access token is about to expire is refreshed before use, and the rotated tokens are cached", async () => {
    fake.accessTokenLifetime = 30; // inside the one-minute margin: refreshed at every use
    await loginTokens("bob@example.edu");
    const before = readLogin(fake.url);
    const credential = resolveCredential(opts({})) as Credential;
    const me = await fetchIdentity(fake.url, credential);
    expect(me.username).toBe("bob@example.edu");
    const after = readLogin(fake.url);
    expect(after?.refresh_token).not.toBe(before?.refresh_token);
    expect(fake.refreshTokens.has(before?.refresh_token ?? "")).toBe(false);
    expect(fake.refreshTokens.has(after?.refresh_token ?? "")).toBe(true);
    expect(fake.requests.filter((r) => r.form.grant_type === "refresh_token")).toHaveLength(1);
  });

  it("a 401 mid-run refreshes once and retries once", async () => {
    await loginTokens("carol@example.edu");
    const credential = resolveCredential(opts({})) as Credential;
    expect((await fetchIdentity(fake.url, credential)).username).toBe("carol@example.edu");
    fake.revokeAccessTokens();
    const whoamis = () => fake.requests.filter((r) => r.path === "/v1/whoami").length;
    const before = whoamis();
    expect((await fetchIdentity(fake.url, credential)).username).toBe("carol@example.edu");
    expect(whoamis() - before).toBe(2);
    expect(fake.requests.filter((r) => r.form.grant_type === "refresh_token")).toHaveLength(1);
  });

  it("a second 401 after the refresh fails with the service's reason, without a third try", async () => {
    await loginTokens("dave@example.edu");
    const credential = resolveCredential(opts({})) as Credential;
    const alwaysRevoked: Credential = {
      kind: credential.kind,
      origin: credential.origin,
      accessToken: () => credential.accessToken(),
      renew: async (rejected) => {
        const renewed = await credential.renew(rejected);
        fake.revokeAccessTokens();
        return renewed;
      },
    };
    fake.revokeAccessTokens();
    const before = fake.requests.length;
    await expect(
      requestWithCredential(alwaysRevoked, {
        method: "GET",
        url: `${fake.url}/v1/whoami`,
        urlSetting: "CONDUIT_SERVICE_URL",
        unreachable: (cause) => new Error("unreachable", { cause }),
      }),
    ).rejects.toThrow(
      `The service refused the token from the login cached in ${join(userDir, "tokens.json")} even after renewing it: fake: token refused.`,
    );
    const calls = fake.requests.slice(before).filter((r) => !r.path.startsWith("/.well-known/"));
    expect(calls.map((r) => r.path)).toEqual(["/v1/whoami", "/token", "/v1/whoami"]);
  });

  it("a refresh token the service refuses says to log in again, and CONDUIT_TOKEN is never renewed", async () => {
    await loginTokens("erin@example.edu");
    fake.refreshTokens.clear();
    fake.revokeAccessTokens();
    const credential = resolveCredential(opts({})) as Credential;
    await expect(fetchIdentity(fake.url, credential)).rejects.toThrow(
      `The login cached for ${fake.url} in ${join(userDir, "tokens.json")} can no longer be used (the service refused its refresh token: invalid_grant: fake: invalid_grant); log in again with \`conduit-endpoint login\`.`,
    );
    const fixed = resolveCredential(opts({ CONDUIT_TOKEN: "nope" })) as Credential;
    await expect(fetchIdentity(fake.url, fixed)).rejects.toThrow("fake: token refused.");
    expect(fake.requests.filter((r) => r.form.grant_type === "refresh_token")).toHaveLength(1);
  });

  it("client-credential tokens are fetched again when the service refuses them", async () => {
    const credential = resolveCredential(
      opts({ CONDUIT_CLIENT_ID: "ci-bot-id", CONDUIT_CLIENT_SECRET: "s3cret" }),
    ) as Credential;
    await fetchIdentity(fake.url, credential);
    fake.revokeAccessTokens();
    expect((await fetchIdentity(fake.url, credential)).username).toBe("ci-bot@clients");
    expect(fake.requests.filter((r) => r.form.grant_type === "client_credentials")).toHaveLength(2);
  });

  it("on a terminal, a login that can no longer be refreshed says so and logs in again", async () => {
    await loginTokens("erin@example.edu");
    fake.refreshTokens.clear();
    saveLogin(fake.url, { ...(readLogin(fake.url) as CachedLogin), expires_at: 0 });
    fake.loginAs = "erin@example.edu";
    const lines: string[] = [];
    const io: LoginIo = {
      print: (line) => lines.push(line),
      prompt: async () => codeFromPage(printedLink(lines.join("\n"), fake.url) as string),
    };
    const credential = await obtainCredential({ ...opts({}), interactive: true, io });
    expect(lines[0]).toMatch(
      /^The login cached for \S+ in \S+ can no longer be used \(the service refused its refresh token/,
    );
    expect(lines[1]).toBe("Please authenticate with Conduit here:");
    expect((await fetchIdentity(fake.url, credential)).username).toBe("erin@example.edu");
  });
});
