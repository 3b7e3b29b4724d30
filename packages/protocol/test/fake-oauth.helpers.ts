/**
 * A small OAuth 2.0 provider and API on node:http, standing in for the
 * service's OpenID Connect provider in the client-side tests: discovery, an
 * authorization page that shows a one-time code (PKCE S256 checked at the
 * exchange), rotated refresh tokens (a spent one is refused), client
 * credentials over HTTP Basic, the device grant with a scripted sequence of
 * answers, revocation, and `GET /v1/whoami` that answers for a live access
 * token. Every request is recorded.
 */
import { createHash, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeRequest {
  method: string;
  path: string;
  form: Record<string, string>;
  authorization: string | undefined;
}

interface Grant {
  username: string;
  expiresAt: number;
  /** Issued for a login asked for with `prompt=login` (a fresh authentication). */
  fresh: boolean;
}

export interface FakeOAuth {
  url: string;
  requests: FakeRequest[];
  /** client id → [secret, username] */
  clients: Map<string, { secret: string; username: string }>;
  /** Lifetime of the access tokens issued, in seconds. */
  accessTokenLifetime: number;
  /** Who approves the next authorization or device code. */
  loginAs: string;
  /** Answers of the device token endpoint before it issues tokens: `authorization_pending`, `slow_down`, … */
  deviceScript: string[];
  /** Access tokens the API refuses from now on (401), as if revoked. */
  revokeAccessTokens(): void;
  /** Whether `/v1/guarded` admits a fresh login (else it refuses every token). */
  policyMet: boolean;
  /** Live refresh tokens. */
  refreshTokens: Map<string, string>;
  close(): Promise<void>;
}

export async function startFakeOAuth(): Promise<FakeOAuth> {
  const accessTokens = new Map<string, Grant>();
  const codes = new Map<string, { challenge: string; redirectUri: string; username: string; fresh: boolean }>();
  const refreshTokens = new Map<string, string>();
  let deviceCode: string | undefined;
  const requests: FakeRequest[] = [];

  const issue = (username: string, withRefresh: boolean, fresh = false) => {
    const access = `at-${randomBytes(8).toString("hex")}`;
    accessTokens.set(access, { username, expiresAt: Date.now() + fake.accessTokenLifetime * 1000, fresh });
    const body: Record<string, unknown> = {
      access_token: access,
      token_type: "Bearer",
      expires_in: fake.accessTokenLifetime,
    };
    if (withRefresh) {
      const refresh = `rt-${randomBytes(8).toString("hex")}`;
      refreshTokens.set(refresh, username);
      body.refresh_token = refresh;
      body.scope = "openid offline_access";
    }
    return body;
  };

  const handle = (req: IncomingMessage, res: ServerResponse, text: string) => {
    const url = new URL(req.url ?? "/", fake.url);
    const form = Object.fromEntries(new URLSearchParams(text));
    requests.push({ method: req.method ?? "", path: url.pathname, form, authorization: req.headers.authorization });
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    const oauthError = (error: string, status = 400) => json(status, { error, error_description: `fake: ${error}` });

    if (url.pathname === "/.well-known/openid-configuration") {
      return json(200, {
        issuer: fake.url,
        authorization_endpoint: `${fake.url}/auth`,
        token_endpoint: `${fake.url}/token`,
        device_authorization_endpoint: `${fake.url}/device/auth`,
        revocation_endpoint: `${fake.url}/token/revocation`,
      });
    }
    if (url.pathname === "/auth") {
      const q = url.searchParams;
      if (q.get("client_id") !== "conduit-cli" || q.get("code_challenge_method") !== "S256") {
        return oauthError("invalid_request");
      }
      const code = `code-${randomBytes(6).toString("hex")}`;
      codes.set(code, {
        challenge: q.get("code_challenge") ?? "",
        redirectUri: q.get("redirect_uri") ?? "",
        username: fake.loginAs,
        fresh: q.get("prompt") === "login",
      });
      res.writeHead(200, { "content-type": "text/html" });
      return res.end(`<p>Your code: <code id="code">${code}</code></p>`);
    }
    if (url.pathname === "/device/auth") {
      deviceCode = `dc-${randomBytes(6).toString("hex")}`;
      return json(200, {
        device_code: deviceCode,
        user_code: "WXYZ-1234",
        verification_uri: `${fake.url}/device`,
        expires_in: 600,
        interval: 2,
      });
    }
    if (url.pathname === "/token/revocation") {
      refreshTokens.delete(form.token ?? "");
      res.writeHead(200);
      return res.end();
    }
    if (url.pathname === "/token") {
      switch (form.grant_type) {
        case "client_credentials": {
          const basic = Buffer.from((req.headers.authorization ?? "").replace(/^Basic /, ""), "base64").toString();
          const [id, secret] = basic.split(":").map(decodeURIComponent);
          const client = fake.clients.get(id ?? "");
          if (client === undefined || client.secret !== secret) return oauthError("invalid_client", 401);
          return json(200, issue(client.username, false));
        }
        case "authorization_code": {
          const entry = codes.get(form.code ?? "");
          codes.delete(form.code ?? "");
          if (entry === undefined) return oauthError("invalid_grant");
          const challenge = createHash("sha256")
            .update(form.code_verifier ?? "")
            .digest("base64url");
          if (challenge !== entry.challenge || form.redirect_uri !== entry.redirectUri)
            return oauthError("invalid_grant");
          return json(200, issue(entry.username, true, entry.fresh));
        }
        case "refresh_token": {
          const username = refreshTokens.get(form.refresh_token ?? "");
          if (username === undefined) return oauthError("invalid_grant");
          refreshTokens.delete(form.refresh_token ?? "");
          return json(200, issue(username, true));
        }
        case "urn:ietf:params:oauth:grant-type:device_code": {
          if (form.device_code !== deviceCode) return oauthError("invalid_grant");
          const next = fake.deviceScript.shift();
          if (next !== undefined) return oauthError(next);
          deviceCode = undefined;
          return json(200, issue(fake.loginAs, true));
        }
        default:
          return oauthError("unsupported_grant_type");
      }
    }
    if (url.pathname === "/v1/whoami") {
      const token = (req.headers.authorization ?? "").replace(/^Bearer /, "");
      const grant = accessTokens.get(token);
      if (grant === undefined || grant.expiresAt <= Date.now()) {
        return json(401, { code: "UNAUTHORIZED", statusCode: 401, message: "fake: token refused." });
      }
      return json(200, { id: "00000000-0000-4000-8000-000000000001", username: grant.username });
    }
    // An endpoint whose authentication policy wants a fresh login (of example.edu, with `policyMet`).
    if (url.pathname === "/v1/guarded") {
      const grant = accessTokens.get((req.headers.authorization ?? "").replace(/^Bearer /, ""));
      if (grant === undefined)
        return json(401, { code: "UNAUTHORIZED", statusCode: 401, message: "fake: token refused." });
      if (grant.fresh && fake.policyMet) return json(200, { username: grant.username });
      return json(403, {
        code: "AUTH_POLICY_UNMET",
        statusCode: 403,
        message: "fake: the policy wants a login of the last 60 seconds.",
        authorization_parameters: {
          session_message: "fake: log in again for policy P.",
          session_required_policies: ["p"],
          session_required_single_domain: [],
          session_required_mfa: false,
        },
      });
    }
    json(404, { code: "ROUTE_NOT_FOUND", statusCode: 404, message: "fake: no such route." });
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => handle(req, res, Buffer.concat(chunks).toString()));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const fake: FakeOAuth = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    clients: new Map(),
    accessTokenLifetime: 3600,
    loginAs: "alice@example.edu",
    deviceScript: [],
    policyMet: true,
    refreshTokens,
    revokeAccessTokens: () => accessTokens.clear(),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return fake;
}

/** The authorization URL a login printed, from its output. */
export function printedLink(output: string, base: string): string | undefined {
  return output.split(/\r?\n/).find((line) => line.startsWith(`${base}/auth?`));
}

/** The code the fake's authorization page shows. */
export async function codeFromPage(link: string): Promise<string> {
  const page = await (await fetch(link)).text();
  const code = /<code id="code">([^<]+)<\/code>/.exec(page)?.[1];
  if (code === undefined) throw new Error(`No code on the page: ${page}`);
  return code;
}
