/**
 * The login routes and the web console's pages under hostile input. They
 * answer without a token and are not in /openapi.json (the provider's own
 * routes, the login pages, the console), so
 * they are listed here by hand: each gets random and hostile query strings,
 * form bodies, content types, cookies and Basic credentials. The service must
 * never answer 5xx and must keep answering /healthz.
 *
 * `npm run fuzz` sets FUZZ_RUNS=1000 (cases per route); inside `npm test`
 * fewer run per route.
 */
import type { RunningService } from "@conduit/service";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FuzzService, startFuzzService } from "./fuzz-service.js";

const RUNS = Number(process.env.FUZZ_RUNS ?? 30);

/** Every unauthenticated login route: the provider's (`/oidc/…`, discovery) and the login pages. */
const LOGIN_ROUTES = [
  "GET /.well-known/openid-configuration",
  "GET /oidc/jwks",
  "GET /oidc/auth",
  "POST /oidc/auth",
  "POST /oidc/token",
  "POST /oidc/token/revocation",
  "POST /oidc/device/auth",
  "GET /oidc/device",
  "POST /oidc/device",
  "GET /oidc/me",
  "GET /oidc/session/end",
  "POST /oidc/session/end",
  "GET /login/code",
  "GET /login/{uid}",
  "POST /login/{uid}",
] as const;

/** The web console's pages: answered without a token too (a session cookie, when there is one). */
const CONSOLE_ROUTES = [
  "GET /",
  "GET /console/",
  "GET /console/sign-in",
  "POST /console/sign-in",
  "POST /console/sign-out",
  "GET /console/oidc/start",
  "GET /console/oidc/callback",
  "GET /console/endpoints/{uid}",
  "GET /console/tasks/{uid}",
  "GET /console/static/{uid}",
] as const;

/** Parameter names the provider and the pages read, plus anything. */
const PARAM_NAMES = [
  "client_id",
  "client_secret",
  "response_type",
  "redirect_uri",
  "scope",
  "state",
  "nonce",
  "code",
  "code_verifier",
  "code_challenge",
  "code_challenge_method",
  "grant_type",
  "refresh_token",
  "device_code",
  "user_code",
  "resource",
  "prompt",
  "request",
  "request_uri",
  "token",
  "token_type_hint",
  "xsrf",
  "csrf",
  "confirm",
  "username",
  "password",
  "consent",
  "error",
  "error_description",
];

const hostileText = fc.oneof(
  fc.string(),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom(
    "conduit-cli",
    "openid offline_access conduit",
    "authorization_code",
    "client_credentials",
    "refresh_token",
    "urn:ietf:params:oauth:grant-type:device_code",
    "code",
    "S256",
    "plain",
    "http://127.0.0.1/login/code",
    "https://evil.example/cb",
    "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
    "\u0000",
    "\ud800",
    "x".repeat(5000),
    "%00",
    "<script>alert(1)</script>",
    "../../etc/passwd",
  ),
);

const params = fc.dictionary(fc.oneof(fc.constantFrom(...PARAM_NAMES), fc.string({ maxLength: 12 })), hostileText, {
  maxKeys: 8,
});

const headers = fc.record(
  {
    "content-type": fc.constantFrom(
      "application/x-www-form-urlencoded",
      "application/json",
      "text/plain",
      "multipart/form-data; boundary=x",
      "application/x-www-form-urlencoded; charset=utf-16",
    ),
    cookie: fc.constantFrom("_interaction=x", "_session=abc; _session.sig=def", "_interaction=\u00ff", "a=b"),
    authorization: fc.constantFrom(
      "Basic Y29uZHVpdC1jbGk6",
      "Basic !!!",
      `Basic ${Buffer.from("00000000-0000-4000-8000-000000000000:nope").toString("base64")}`,
      "Bearer x.y.z",
      "DPoP abc",
    ),
  },
  { requiredKeys: [] },
);

const uid = fc.oneof(fc.string({ minLength: 1, maxLength: 30 }), fc.constantFrom("code", "x".repeat(300), "%2e%2e"));

let service: RunningService;
let fuzzService: FuzzService;

beforeAll(async () => {
  fuzzService = await startFuzzService("oidc-fuzz");
  service = fuzzService.service;
});

afterAll(async () => {
  await fuzzService?.dispose();
});

async function healthy(): Promise<boolean> {
  const response = await fetch(`${service.url}/healthz`).catch(() => undefined);
  return response?.status === 200;
}

describe("login routes under hostile input (listed by hand: they are not in /openapi.json)", () => {
  it("lists routes that exist (discovery names the provider's)", async () => {
    const doc = (await (await fetch(`${service.url}/.well-known/openid-configuration`)).json()) as Record<
      string,
      unknown
    >;
    for (const key of [
      "authorization_endpoint",
      "token_endpoint",
      "jwks_uri",
      "revocation_endpoint",
      "device_authorization_endpoint",
      "userinfo_endpoint",
      "end_session_endpoint",
    ]) {
      const path = new URL(String(doc[key])).pathname;
      expect(
        LOGIN_ROUTES.some((r) => r.endsWith(` ${path}`)),
        `${key} ${path}`,
      ).toBe(true);
    }
  });

  it.each([...LOGIN_ROUTES, ...CONSOLE_ROUTES])("%s: never a 5xx", async (route) => {
    const [method, template] = route.split(" ") as ["GET" | "POST", string];
    const details = await fc.check(
      fc.asyncProperty(uid, params, params, headers, async (u, query, form, h) => {
        const path = template.replace("{uid}", encodeURIComponent(u));
        const search = new URLSearchParams(query).toString();
        const url = `${service.url}${path}${search ? `?${search}` : ""}`;
        const response = await fetch(url, {
          method,
          headers: h,
          body: method === "POST" ? new URLSearchParams(form).toString() : undefined,
          redirect: "manual",
        });
        const text = await response.text();
        if (response.status >= 500)
          throw new Error(`${method} ${url.slice(0, 300)} -> ${response.status} ${text.slice(0, 300)}`);
      }),
      { numRuns: RUNS },
    );
    expect(details.failed, details.counterexample ? String(details.errorInstance) : "").toBe(false);
    expect(await healthy()).toBe(true);
  });
});
