/**
 * The console's session: the credential a user signed in with (an API token,
 * or the access token of a login) sealed with AES-256-GCM into an HttpOnly,
 * SameSite=Strict cookie, so any replica holding the service's secret can
 * read it and nobody else can read or forge it. Each request still goes
 * through the Authenticator with that credential, so a revoked token or a
 * removed identity ends the session at once.
 *
 * CSRF: every form carries an HMAC of the cookie it must come with (the
 * session, or before sign-in a random pre-session cookie).
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";

export const SESSION_COOKIE = "conduit_console";
/** Before sign-in: what the sign-in form's CSRF token is bound to. */
export const PRE_SESSION_COOKIE = "conduit_console_pre";
/** During an OIDC sign-in: the PKCE verifier and state, sealed. */
export const OIDC_COOKIE = "conduit_console_oidc";

/** How long a session lasts at most (an access token ends it sooner). */
export const SESSION_TTL_S = 12 * 3600;

export interface ConsoleSession {
  /** The bearer credential the user signed in with. */
  token: string;
  /** Milliseconds since the epoch. */
  expiresAt: number;
}

export class SessionSealer {
  private readonly key: Buffer;
  private readonly macKey: Buffer;

  /** @param secret a service secret (base64url, ≥ 32 bytes) */
  constructor(
    secret: string,
    private readonly secure: boolean,
  ) {
    const raw = Buffer.from(secret, "base64url");
    this.key = createHmac("sha256", raw).update("console-session-key").digest();
    this.macKey = createHmac("sha256", raw).update("console-csrf-key").digest();
  }

  seal(value: unknown): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.key, iv);
    const body = Buffer.concat([cipher.update(JSON.stringify(value), "utf8"), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64url");
  }

  /** The sealed value, or undefined when it is absent, altered or not ours. */
  open<T>(sealed: string | undefined): T | undefined {
    if (!sealed) return undefined;
    const raw = Buffer.from(sealed, "base64url");
    if (raw.length < 29) return undefined;
    try {
      const decipher = createDecipheriv("aes-256-gcm", this.key, raw.subarray(0, 12));
      decipher.setAuthTag(raw.subarray(12, 28));
      const text = Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString("utf8");
      return JSON.parse(text) as T;
    } catch {
      return undefined;
    }
  }

  session(request: FastifyRequest): ConsoleSession | undefined {
    const session = this.open<ConsoleSession>(readCookie(request, SESSION_COOKIE));
    if (!session || typeof session.token !== "string" || !(session.expiresAt > Date.now())) return undefined;
    return session;
  }

  /** The CSRF token a form posted with `cookieValue` must carry. */
  csrfFor(cookieValue: string): string {
    return createHmac("sha256", this.macKey).update(cookieValue).digest("base64url");
  }

  csrfMatches(cookieValue: string | undefined, given: unknown): boolean {
    if (!cookieValue || typeof given !== "string") return false;
    const expected = Buffer.from(this.csrfFor(cookieValue));
    const actual = Buffer.from(given);
    return expected.length === actual.length && timingSafeEqual(expected, actual);
  }

  setCookie(reply: FastifyReply, name: string, value: string, maxAgeS: number): void {
    const secure = this.secure ? "; Secure" : "";
    const cookie = `${name}=${value}; Path=/; Max-Age=${maxAgeS}; HttpOnly; SameSite=Strict${secure}`;
    const previous = reply.getHeader("set-cookie");
    const all = Array.isArray(previous) ? previous : typeof previous === "string" ? [previous] : [];
    reply.header("set-cookie", [...all, cookie]);
  }

  clearCookie(reply: FastifyReply, name: string): void {
    this.setCookie(reply, name, "", 0);
  }
}

/** One cookie of the request (values are base64url, so they need no decoding). */
export function readCookie(request: FastifyRequest, name: string): string | undefined {
  for (const part of (request.headers.cookie ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
