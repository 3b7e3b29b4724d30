/**
 * Sign-in to the console through the service's own login: the console is an
 * OpenID client of the service ({@link CONSOLE_CLIENT_ID}, public, code flow
 * with PKCE). The verifier and state wait in a sealed cookie; the access
 * token the code buys becomes the session's credential, so the session ends
 * with it (an hour) or when its grant is revoked.
 */
import { createHash, randomBytes } from "node:crypto";
import { API_SCOPE, OAuthError, type TokenResponse, tokenRequest } from "@conduit/protocol";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { CONSOLE_CALLBACK_PATH, CONSOLE_CLIENT_ID, OIDC_PREFIX, type OidcService } from "../auth/oidc.js";
import { OIDC_COOKIE, readCookie, type SessionSealer } from "./console-session.js";
import { CONSOLE_PATH } from "./console-views.js";

/** How long a sign-in may take between leaving the console and coming back. */
const SIGN_IN_TTL_S = 15 * 60;

interface PendingSignIn {
  verifier: string;
  state: string;
  expiresAt: number;
}

export interface ConsoleOidcDeps {
  sealer: SessionSealer;
  oidc(): OidcService | undefined;
  startSession(reply: FastifyReply, token: string, expiresAt: number): void;
  showSignIn(reply: FastifyReply, request: FastifyRequest, problem: string, status: number): FastifyReply;
}

export function consoleOidcRoutes(app: FastifyInstance, deps: ConsoleOidcDeps): void {
  const { sealer } = deps;
  const route = { config: { public: true }, schema: { hide: true } } as const;

  app.get(`${CONSOLE_PATH}/oidc/start`, route, async (request, reply) => {
    const oidc = deps.oidc();
    if (!oidc) return deps.showSignIn(reply, request, "The service is still starting; try again in a moment.", 503);
    const pending: PendingSignIn = {
      verifier: randomBytes(32).toString("base64url"),
      state: randomBytes(16).toString("base64url"),
      expiresAt: Date.now() + SIGN_IN_TTL_S * 1000,
    };
    sealer.setCookie(reply, OIDC_COOKIE, sealer.seal(pending), SIGN_IN_TTL_S);
    const url = new URL(`${oidc.issuer}${OIDC_PREFIX}/auth`);
    url.search = new URLSearchParams({
      response_type: "code",
      client_id: CONSOLE_CLIENT_ID,
      redirect_uri: `${oidc.issuer}${CONSOLE_CALLBACK_PATH}`,
      scope: `openid ${API_SCOPE}`,
      code_challenge: createHash("sha256").update(pending.verifier).digest("base64url"),
      code_challenge_method: "S256",
      state: pending.state,
    }).toString();
    return reply.redirect(url.toString(), 303);
  });

  app.get<{ Querystring: Record<string, string | undefined> }>(CONSOLE_CALLBACK_PATH, route, async (request, reply) => {
    const oidc = deps.oidc();
    const pending = sealer.open<PendingSignIn>(readCookie(request, OIDC_COOKIE));
    sealer.clearCookie(reply, OIDC_COOKIE);
    const { code, state, error, error_description } = request.query;
    if (!oidc || !pending || !(pending.expiresAt > Date.now()) || state !== pending.state) {
      return deps.showSignIn(reply, request, "That sign-in expired or was not started here; sign in again.", 400);
    }
    if (!code) {
      return deps.showSignIn(reply, request, `The sign-in failed (${error_description ?? error ?? "no code"}).`, 400);
    }
    let tokens: TokenResponse;
    try {
      tokens = await tokenRequest(`${oidc.issuer}${OIDC_PREFIX}/token`, {
        grant_type: "authorization_code",
        code,
        redirect_uri: `${oidc.issuer}${CONSOLE_CALLBACK_PATH}`,
        client_id: CONSOLE_CLIENT_ID,
        code_verifier: pending.verifier,
      });
    } catch (err) {
      if (!(err instanceof OAuthError)) throw err;
      return deps.showSignIn(reply, request, `The service refused the sign-in (${err.reason}); sign in again.`, 400);
    }
    deps.startSession(reply, tokens.access_token, Date.now() + (tokens.expires_in ?? 3600) * 1000);
    return reply.redirect(`${CONSOLE_PATH}/`, 303);
  });
}
