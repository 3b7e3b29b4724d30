/**
 * Federation: a second oidc-provider, started here, is the upstream provider
 * of example.edu (`conduit-service idp add`, a real child process). A user of
 * that domain typed into the login page is sent there, signs in (its
 * development login pages), comes back, and is `username@domain` here, with
 * the same identity at every login; a provider vouching for a username of
 * another domain is refused; the provider's `amr` claim is recorded with the
 * login, and a second factor there meets a `required_mfa` policy here.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import type { ApiErrorBody, AuthPolicyInfo, ProjectInfo } from "@conduit/protocol";
import Provider from "oidc-provider";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningService } from "../src/index.js";
import { authorizeUrl, Browser, formAction, pkcePair, tokensForCodePage } from "./helpers/oidc-flows.js";
import { restHelpers, submitBody } from "./helpers/rest.js";
import { startTestService } from "./helpers/service.js";

const CLI = fileURLToPath(new URL("../src/cli.ts", import.meta.url));
const UPSTREAM_CLIENT = "conduit-at-example";
const UPSTREAM_SECRET = "upstream-client-secret-0123456789";
/** Upstream logins that had a second factor there (a one-time code); the others a password only. */
const SECOND_FACTOR_LOGINS = new Set(["frank"]);

describe("sign-in through an upstream OpenID provider", () => {
  const disposers: Array<() => Promise<void>> = [];
  let service: RunningService;
  let upstream: Server;
  let upstreamIssuer: string;

  beforeAll(async () => {
    const started = await startTestService();
    disposers.push(started.dispose);
    service = started.value;

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
      // `amr` under `openid`: oidc-provider puts only claims of a granted scope in the ID token.
      claims: { openid: ["sub", "amr"], profile: ["preferred_username"], email: ["email"] },
      features: { devInteractions: { enabled: true } },
    });
    // The development login pages finish a login without `amr`; give it the one a real provider would.
    const finished = provider.interactionFinished.bind(provider);
    provider.interactionFinished = (req, res, result, options) => {
      const login = result.login as { accountId: string } | undefined;
      const amr = login && (SECOND_FACTOR_LOGINS.has(login.accountId) ? ["pwd", "otp"] : ["pwd"]);
      return finished(req, res, login ? { ...result, login: { ...login, amr } } : result, options);
    };
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

  /** A federated login's access token. */
  async function federatedToken(username: string, upstreamLogin: string): Promise<string> {
    const { landed, verifier } = await federatedLogin(username, upstreamLogin);
    expect(landed.status, landed.text).toBe(200);
    return (await tokensForCodePage(service.url, landed.text, verifier)).access_token;
  }

  it("sends example.edu's users upstream and makes them username@example.edu here, the same identity each time", async () => {
    const token = await federatedToken("dora@example.edu", "dora");
    const who = await fetch(`${service.url}/v1/whoami`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const me = (await who.json()) as { id: string; username: string; identity_provider?: string };
    expect(me.username).toBe("dora@example.edu");
    expect(me.identity_provider).toBe(upstreamIssuer);
    const logins = await service.authStore.logins(me.id);
    expect(logins[0].method).toBe(`federated:${upstreamIssuer}`);
    expect(logins[0].amr).toEqual(["pwd"]);

    const again = await federatedLogin("dora@example.edu", "dora");
    expect(again.landed.status).toBe(200);
    expect((await service.store.findIdentityByUsername("dora@example.edu"))?.id).toBe(me.id);
  });

  it("records the provider's amr, and a second factor there meets a required_mfa policy here", async () => {
    const { call, expectError, registerEndpoint, registerFunction } = restHelpers(() => ({
      url: service.url,
      token: service.adminToken,
    }));
    const project = await call<ProjectInfo>("POST", "/v1/projects", { body: { display_name: "Federated MFA" } });
    const policy = await call<AuthPolicyInfo>("POST", "/v1/auth_policies", {
      body: { project_id: project.body.id, display_name: "MFA", high_assurance: true, required_mfa: true },
    });
    expect(policy.status, JSON.stringify(policy.body)).toBe(201);
    const submitAs = async (token: string) => {
      const endpointId = await registerEndpoint({ authentication_policy: policy.body.id }, token);
      const functionId = await registerFunction(undefined, token);
      return call<ApiErrorBody>("POST", `/v1/endpoints/${endpointId}/submit`, { token, body: submitBody(functionId) });
    };

    const frank = await federatedToken("frank@example.edu", "frank");
    const frankId = (await service.store.findIdentityByUsername("frank@example.edu"))?.id ?? "";
    const [login] = await service.authStore.logins(frankId);
    expect(login.method).toBe(`federated:${upstreamIssuer}`);
    expect(login.amr).toEqual(["pwd", "otp"]);
    expect((await submitAs(frank)).status).toBe(200);

    const gina = await federatedToken("gina@example.edu", "gina");
    const refused = expectError(await submitAs(gina), 403, "AUTH_POLICY_UNMET");
    expect(refused.message).toContain(
      "needs a login with a second factor (MFA), and the last login of gina@example.edu had none",
    );
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
