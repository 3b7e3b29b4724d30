/**
 * Logins driven over HTTP as a person with a browser would: follow the
 * authorize link, submit the login form, read the code from the page the
 * redirect lands on, exchange it with PKCE; or the device flow. A tiny cookie
 * jar stands in for the browser (no JavaScript is needed by any page).
 */
import { createHash, randomBytes } from "node:crypto";
import { expect } from "vitest";

export const CLI_CLIENT = "conduit-cli";
export const CLI_SCOPE = "openid offline_access conduit";

export interface TokenSet {
  access_token: string;
  refresh_token?: string;
  id_token?: string;
  expires_in: number;
  token_type: string;
  scope?: string;
}

export interface PageResponse {
  status: number;
  location: string | undefined;
  text: string;
}

/** Cookies by host and name (paths ignored); redirects followed by hand. */
export class Browser {
  /** host → name → value */
  private readonly jars = new Map<string, Map<string, string>>();

  constructor(private readonly base: string) {}

  async request(url: string, init: { method?: string; form?: Record<string, string> } = {}): Promise<PageResponse> {
    const absolute = new URL(url, this.base).toString();
    const host = new URL(absolute).hostname;
    let cookies = this.jars.get(host);
    if (!cookies) {
      cookies = new Map();
      this.jars.set(host, cookies);
    }
    const headers: Record<string, string> = {};
    if (cookies.size > 0) headers.cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    let body: string | undefined;
    if (init.form) {
      headers["content-type"] = "application/x-www-form-urlencoded";
      body = new URLSearchParams(init.form).toString();
    }
    const response = await fetch(absolute, {
      method: init.method ?? (init.form ? "POST" : "GET"),
      headers,
      body,
      redirect: "manual",
    });
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(";");
      const eq = pair.indexOf("=");
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const gone = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a) || /^\s*expires=Thu, 01 Jan 1970/i.test(a));
      if (gone || value === "") cookies.delete(name);
      else cookies.set(name, value);
    }
    const location = response.headers.get("location") ?? undefined;
    return {
      status: response.status,
      location: location && new URL(location, absolute).toString(),
      text: await response.text(),
    };
  }

  /** GETs `url` and follows redirects (303/302/301) up to a page that answers otherwise. */
  async follow(url: string, first?: PageResponse): Promise<PageResponse & { url: string }> {
    let current = url;
    let response = first ?? (await this.request(current));
    for (let hops = 0; response.location && hops < 10; hops++) {
      current = response.location;
      response = await this.request(current);
    }
    return { ...response, url: current };
  }
}

export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString("base64url");
  return { verifier, challenge: createHash("sha256").update(verifier).digest("base64url") };
}

export function authorizeUrl(
  base: string,
  challenge: string,
  overrides: Record<string, string | undefined> = {},
): string {
  const params: Record<string, string | undefined> = {
    client_id: CLI_CLIENT,
    response_type: "code",
    redirect_uri: `${base}/login/code`,
    scope: CLI_SCOPE,
    code_challenge: challenge,
    code_challenge_method: "S256",
    state: randomBytes(8).toString("hex"),
    ...overrides,
  };
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) query.set(k, v);
  return `${base}/oidc/auth?${query}`;
}

/** The `action` of the page's (only) form. */
export function formAction(html: string): string {
  const match = /<form[^>]*action="([^"]+)"/.exec(html);
  if (!match) throw new Error(`No form on the page:\n${html.slice(0, 2000)}`);
  return match[1].replaceAll("&amp;", "&");
}

/** The hidden inputs of the page's form. */
export function hiddenInputs(html: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\/?>/g)) out[m[1]] = m[2];
  return out;
}

/**
 * Follows the authorize link to the login page and submits it; returns the
 * page the redirects end on (the code page when it worked).
 */
export async function signIn(
  browser: Browser,
  link: string,
  username: string,
  password: string,
): Promise<PageResponse & { url: string }> {
  const login = await browser.follow(link);
  expect(login.status, login.text).toBe(200);
  const posted = await browser.request(formAction(login.text), { form: { username, password } });
  if (posted.status !== 303) return { ...posted, url: formAction(login.text) };
  return browser.follow(posted.location ?? "", posted);
}

/** The code shown by /login/code. */
export function codeOnPage(html: string): string {
  const match = /<code class="big" id="code">([^<]+)<\/code>/.exec(html);
  if (!match) throw new Error(`No code on the page:\n${html.slice(0, 2000)}`);
  return match[1];
}

export async function tokenRequest(
  base: string,
  form: Record<string, string>,
  basicAuth?: { id: string; secret: string },
): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded" };
  if (basicAuth) {
    const pair = `${encodeURIComponent(basicAuth.id)}:${encodeURIComponent(basicAuth.secret)}`;
    headers.authorization = `Basic ${Buffer.from(pair).toString("base64")}`;
  }
  const response = await fetch(`${base}/oidc/token`, {
    method: "POST",
    headers,
    body: new URLSearchParams(form).toString(),
  });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** The CLI's tokens for the code on a /login/code page (`html`), with the PKCE `verifier` its login began with. */
export async function tokensForCodePage(base: string, html: string, verifier: string): Promise<TokenSet> {
  const r = await tokenRequest(base, {
    grant_type: "authorization_code",
    code: codeOnPage(html),
    redirect_uri: `${base}/login/code`,
    client_id: CLI_CLIENT,
    code_verifier: verifier,
  });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body as unknown as TokenSet;
}

/** The whole link-and-code login; returns the tokens. */
export async function codeLogin(base: string, username: string, password: string): Promise<TokenSet> {
  const browser = new Browser(base);
  const { verifier, challenge } = pkcePair();
  const landed = await signIn(browser, authorizeUrl(base, challenge), username, password);
  expect(landed.status, landed.text).toBe(200);
  return tokensForCodePage(base, landed.text, verifier);
}

/** Reads a JWT's payload without verifying it. */
export function jwtPayload(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString("utf8")) as Record<string, unknown>;
}

export function jwtHeader(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split(".")[0], "base64url").toString("utf8")) as Record<string, unknown>;
}

/** A JSON API call with a bearer token: its status and parsed body (undefined when empty). */
export async function bearerCall<T = Record<string, unknown>>(
  baseUrl: string,
  method: string,
  path: string,
  token: string,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T };
}
