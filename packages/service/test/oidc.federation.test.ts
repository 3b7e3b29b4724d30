/**
 * Federation: a second oidc-provider, started here, is the upstream provider
 * of example.edu (`conduit-service idp add`, a real child process). A user of
 * that domain typed into the login page is sent there, signs in (its
 * development login pages), comes back, and is `username@domain` here, with
 * the same identity at every login; a provider vouching for a username of
 * another domain is refused.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Provider from "oidc-provider";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningService, startService } from "../src/index.js";
import { createVhost } from "./helpers/broker.js";
import { createTempDir } from "./helpers/databases.js";
import {
  authorizeUrl,
  Browser,
  CLI_CLIENT,
  codeOnPage,
  formAction,
  pkcePair,
  type TokenSet,
  tokenRequest,
} from "./helpers/oidc-flows.js";

const CLI = fileURLToPath(new URL("../src/cli.ts", import.meta.url));
const UPSTREAM_CLIENT = "conduit-at-example";
const UPSTREAM_SECRET = "upstream-client-secret-0123456789";

describe("sign-in through an upstream OpenID provider", () => {
  const disposers: Array<() => Promise<void>> = [];
  let service: RunningService;
  let upstream: Server;
  let upstreamIssuer: string;

  beforeAll(async () => {
    const vhost = await createVhost();
    disposers.push(() => vhost.dispose());
    const dir = await createTempDir();
    disposers.push(() => dir.dispose());
    service = await startService({
      port: 0,
      dataDir: join(dir.value, "service"),
      amqpUrl: vhost.value,
      writeCredentials: false,
      logLevel: "silent",
    });
    disposers.push(() => service.close());

    // The upstream: another host name than the service's, so that the browser keeps their cookies apart.
    let handler: ReturnType<Provider["callback"]> | undefined;
    upstream = createServer((req, res) => handler?.(req, res));
    upstream.listen(0, "127.0.0.1");
    await once(upstream, "listening");
    disposers.push(() => new Promise<void>((resolve) => upstream.close(() => resolve())));
    upstreamIssuer = `http://localhost:${(upstream.address() as AddressInfo).port}`;
    const provider = new Provider(upstreamIssuer, {
      clients: [
        {
          client_id: UPSTREAM_CLIENT,
          client_secret: UPSTREAM_SECRET,
          redirect_uris: [`${service.url}/login/federated`],
          token_endpoint_auth_method: "client_secret_post",
        },
      ],
      async findAccount(_ctx, id) {
        return {
          accountId: id,
          claims: () => ({ sub: `upstream-${id}`, preferred_username: id, email: `${id}@example.edu` }),
        };
      },
      claims: { openid: ["sub"], profile: ["preferred_username"], email: ["email"] },
      features: { devInteractions: { enabled: true } },
    });
    handler = provider.callback();

    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        CLI,
        "idp",
        "add",
        "--issuer",
        upstreamIssuer,
        "--client-id",
        UPSTREAM_CLIENT,
        "--client-secret-stdin",
        "--domain",
        "example.edu",
      ],
      {
        env: { ...process.env, CONDUIT_SERVICE_URL: service.url, CONDUIT_TOKEN: service.adminToken },
        stdio: ["pipe", "pipe", "pipe"],
      },
    );
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    child.stdin.end(`${UPSTREAM_SECRET}\n`);
    const [code] = (await once(child, "exit")) as [number | null];
    expect(err).toBe("");
    expect(code).toBe(0);
    expect(out).toContain(`Users of example.edu now sign in at ${upstreamIssuer}`);
  }, 90_000);

  afterAll(async () => {
    for (const dispose of disposers.reverse()) await dispose();
  });

  /** Our login page → upstream login and consent → back → the code page; returns the last page. */
  async function federatedLogin(username: string, upstreamLogin: string) {
    const browser = new Browser(service.url);
    const { verifier, challenge } = pkcePair();
    const ours = await browser.follow(authorizeUrl(service.url, challenge));
    const sent = await browser.request(formAction(ours.text), { form: { username, password: "" } });
    expect(sent.status, sent.text).toBe(303);
    expect(sent.location).toMatch(new RegExp(`^${upstreamIssuer}/`));
    const login = await browser.follow(sent.location ?? "", sent);
    const loggedIn = await browser.request(new URL(formAction(login.text), login.url).toString(), {
      form: { prompt: "login", login: upstreamLogin, password: "anything" },
    });
    const consent = await browser.follow(loggedIn.location ?? "", loggedIn);
    const consented = await browser.request(new URL(formAction(consent.text), consent.url).toString(), {
      form: { prompt: "consent" },
    });
    const landed = await browser.follow(consented.location ?? "", consented);
    return { landed, verifier };
  }

  it("sends example.edu's users upstream and makes them username@example.edu here, the same identity each time", async () => {
    const { landed, verifier } = await federatedLogin("dora@example.edu", "dora");
    expect(landed.status, landed.text).toBe(200);
    const r = await tokenRequest(service.url, {
      grant_type: "authorization_code",
      code: codeOnPage(landed.text),
      redirect_uri: `${service.url}/login/code`,
      client_id: CLI_CLIENT,
      code_verifier: verifier,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const tokens = r.body as unknown as TokenSet;
    const who = await fetch(`${service.url}/v1/whoami`, {
      headers: { authorization: `Bearer ${tokens.access_token}` },
    });
    const me = (await who.json()) as { id: string; username: string; identity_provider?: string };
    expect(me.username).toBe("dora@example.edu");
    expect(me.identity_provider).toBe(upstreamIssuer);
    const logins = await service.authStore.logins(me.id);
    expect(logins[0].method).toBe(`federated:${upstreamIssuer}`);

    const again = await federatedLogin("dora@example.edu", "dora");
    expect(again.landed.status).toBe(200);
    expect((await service.store.findIdentityByUsername("dora@example.edu"))?.id).toBe(me.id);
  });

  it("refuses a username the provider vouches for outside its domain", async () => {
    const { landed } = await federatedLogin("eve@example.edu", "eve@evil.example");
    expect(landed.status).toBe(400);
    expect(landed.text).toContain("The provider vouched for no username in example.edu");
    expect(await service.store.findIdentityByUsername("eve@evil.example")).toBeUndefined();
  });

  it("idp add refuses an issuer it cannot read, naming it", async () => {
    const r = await fetch(`${service.url}/v1/admin/idps`, {
      method: "POST",
      headers: { authorization: `Bearer ${service.adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({
        domain: "other.edu",
        issuer: "http://127.0.0.1:9/nothing",
        client_id: "x",
        client_secret: "y",
      }),
    });
    expect(r.status).toBe(400);
    const body = (await r.json()) as { code: string; message: string };
    expect(body.code).toBe("IDP_DISCOVERY_FAILED");
    expect(body.message).toContain("http://127.0.0.1:9/nothing");
  });
});
