/**
 * The login pages of the OpenID provider, server-rendered, no JavaScript:
 *
 * - `GET /login/:uid`, `POST /login/:uid`: the sign-in form of an interaction
 *   (local account: `user@domain` and password), rate limited per account and
 *   per address;
 * - `GET /login/code`: where the CLIs' authorization code lands; it shows the
 *   code to paste into the terminal that asked for it.
 *
 * Plus the provider's own routes (`/oidc/*`, discovery), handed to it whole
 * before Fastify reads the body. None of these needs a token; none is in
 * /openapi.json (the fuzz suite lists them by hand).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { FEDERATED_CALLBACK_PATH } from "../../auth/federation.js";
import { escapeHtml, FIRST_PARTY_CLIENT_IDS, type OidcService, page } from "../../auth/oidc.js";
import { FailureLimiter } from "../../auth/rate-limit.js";
import { ServiceError } from "../../errors.js";
import type { AuthStore } from "../../store/auth-store.js";
import type { Store } from "../../store/store.js";
import {
  checkPassword,
  codeForm,
  endCodeStep,
  OTP_AMR,
  pendingCodeStep,
  startCodeStep,
  type TotpDeps,
  takeCode,
  totpPages,
} from "./totp-pages.js";

export interface LoginDeps {
  store: Store;
  authStore: AuthStore;
  /** Set once the service listens (the issuer is its URL). */
  oidc(): OidcService | undefined;
  /** Judges one-time codes (the service's clock option). */
  clock: () => number;
}

/** Failed sign-ins allowed per account, and per address, in {@link FAILURE_WINDOW_MS}. */
const FAILURES_PER_ACCOUNT = 5;
const FAILURES_PER_ADDRESS = 20;
const FAILURE_WINDOW_MS = 15 * 60_000;

function starting(): ServiceError {
  return new ServiceError("SERVICE_STARTING", "The service is still starting; try again in a moment.");
}

export function loginRoutes(app: FastifyInstance, deps: LoginDeps): void {
  const byAccount = new FailureLimiter(FAILURES_PER_ACCOUNT, FAILURE_WINDOW_MS);
  const byAddress = new FailureLimiter(FAILURES_PER_ADDRESS, FAILURE_WINDOW_MS);
  const totp: TotpDeps = { ...deps, byAccount, byAddress, issuer: "Conduit" };

  const forward = async (request: FastifyRequest, reply: FastifyReply) => {
    const oidc = deps.oidc();
    if (!oidc) throw starting();
    reply.hijack();
    await oidc.handle(request.raw, reply.raw);
  };
  const provider = {
    config: { public: true },
    schema: { hide: true },
    // Before the body is read: the provider parses its own requests.
    onRequest: forward,
    handler: async () => undefined,
  };
  app.route({ method: ["GET", "POST", "HEAD", "OPTIONS", "DELETE"], url: "/oidc/*", ...provider });
  app.route({ method: ["GET", "HEAD", "OPTIONS"], url: "/.well-known/openid-configuration", ...provider });

  app.get<{ Querystring: Record<string, string | undefined> }>(
    "/login/code",
    { config: { public: true }, schema: { hide: true } },
    async (request, reply) => {
      const { code, error, error_description } = request.query;
      reply.type("text/html; charset=utf-8");
      if (typeof code === "string" && code.length > 0 && code.length < 4096) {
        return page(
          "Sign-in complete",
          `<p>Copy this authorization code and paste it where you were asked for it:</p>
<p><code class="big" id="code">${escapeHtml(code)}</code></p>
<p>It works once, within two minutes. You may close this page afterwards.</p>`,
        );
      }
      reply.code(400);
      const why = typeof error_description === "string" ? error_description : (error ?? "no code was returned");
      return page(
        "Sign-in failed",
        `<p class="error">${escapeHtml(String(why))}</p><p>Start the login again from the command that sent you here.</p>`,
      );
    },
  );

  app.get(FEDERATED_CALLBACK_PATH, { config: { public: true }, schema: { hide: true } }, async (request, reply) => {
    const oidc = deps.oidc();
    if (!oidc) throw starting();
    try {
      const { uid, state } = await oidc.federation.callback(new URL(request.url, oidc.issuer));
      return reply.redirect(`/login/${encodeURIComponent(uid)}?federated=${encodeURIComponent(state)}`, 303);
    } catch (err) {
      reply.code(400).type("text/html; charset=utf-8");
      const why =
        err instanceof Error && err.message.endsWith(".")
          ? err.message
          : "Your organization's answer could not be verified.";
      return page(
        "Sign-in failed",
        `<p class="error">${escapeHtml(why)}</p><p>Start the login again from the command that sent you here.</p>`,
      );
    }
  });

  app.register(async (scope) => {
    scope.addContentTypeParser(
      "application/x-www-form-urlencoded",
      { parseAs: "string", bodyLimit: 16_384 },
      (_request, body, done) => done(null, Object.fromEntries(new URLSearchParams(String(body)))),
    );
    totpPages(scope, totp);

    scope.get<{ Params: { uid: string } }>(
      "/login/:uid",
      { config: { public: true }, schema: { hide: true } },
      async (request, reply) => {
        const oidc = deps.oidc();
        if (!oidc) throw starting();
        const details = await interaction(oidc, request, reply);
        if (!details) return;
        if (details.prompt.name === "consent") {
          if (!FIRST_PARTY_CLIENT_IDS.has(String(details.params.client_id))) return deny(oidc, request, reply);
          // Signed in on this very page a moment ago: going on is what they asked for.
          if (details.lastSubmission?.login) return consent(oidc, details, request, reply);
          const identity = await deps.store.getIdentity(String(details.session?.accountId ?? ""));
          return confirmForm(reply, request.params.uid, identity?.username ?? "your account");
        }
        if (details.prompt.name !== "login") return deny(oidc, request, reply);
        const federated = (request.query as { federated?: unknown }).federated;
        if (typeof federated === "string") {
          const vouched = await oidc.federation.take(request.params.uid, federated);
          if (!vouched) {
            reply.code(400);
            return loginForm(
              reply,
              request.params.uid,
              "",
              "That sign-in at your organization expired or was used; sign in again.",
            );
          }
          const identity = await deps.store.createIdentity(vouched.username, { identityProvider: vouched.issuer });
          // The upstream provider's own `amr` (a second factor there counts for `required_mfa`).
          await deps.authStore.recordLogin(identity.id, `federated:${vouched.issuer}`, request.ip, vouched.amr);
          const to = await oidc.current.interactionResult(
            request.raw,
            reply.raw,
            { login: { accountId: identity.id, amr: ["fed"], remember: true } },
            { mergeWithLastSubmission: false },
          );
          return reply.redirect(to, 303);
        }
        return loginForm(reply, request.params.uid, String(details.params.login_hint ?? ""));
      },
    );

    scope.post<{ Params: { uid: string }; Body: Record<string, string | undefined> }>(
      "/login/:uid",
      { config: { public: true }, schema: { hide: true } },
      async (request, reply) => {
        const oidc = deps.oidc();
        if (!oidc) throw starting();
        const details = await interaction(oidc, request, reply);
        if (!details) return;
        const { uid } = request.params;
        if (details.prompt.name === "consent") {
          if (!FIRST_PARTY_CLIENT_IDS.has(String(details.params.client_id)) || request.body?.consent !== "yes") {
            return deny(oidc, request, reply);
          }
          return consent(oidc, details, request, reply);
        }
        if (details.prompt.name !== "login") return deny(oidc, request, reply);
        if (request.body?.otp !== undefined && request.body.username === undefined) {
          return codeStep(oidc, totp, request, reply);
        }
        const username = String(request.body?.username ?? "")
          .trim()
          .toLowerCase();
        const password = String(request.body?.password ?? "");
        const domain = username.slice(username.lastIndexOf("@") + 1);
        const idp = username.includes("@") ? await deps.authStore.idpForDomain(domain) : undefined;
        if (idp) {
          try {
            return reply.redirect(await oidc.federation.start(uid, idp, username), 303);
          } catch {
            reply.code(502);
            return loginForm(
              reply,
              uid,
              username,
              `The identity provider of ${domain} cannot be reached; try again later.`,
            );
          }
        }
        const address = request.ip;
        const wait = Math.max(byAccount.retryAfterMs(username), byAddress.retryAfterMs(address));
        if (wait > 0) {
          reply.code(429).header("retry-after", Math.ceil(wait / 1000));
          return loginForm(
            reply,
            uid,
            username,
            `Too many failed sign-ins for this account or from this address; wait ${Math.ceil(wait / 60_000)} minute(s) and try again.`,
          );
        }
        const identity = await checkPassword(deps, username, password);
        if (!identity) {
          byAccount.fail(username);
          byAddress.fail(address);
          reply.code(401);
          return loginForm(
            reply,
            uid,
            username,
            "Wrong username or password; check both (the username is user@domain) and try again.",
          );
        }
        byAccount.clear(username);
        if (await startCodeStep(totp, uid, identity)) return codeForm(reply, uid);
        await deps.authStore.recordLogin(identity.id, "password", address, ["pwd"]);
        const to = await oidc.current.interactionResult(
          request.raw,
          reply.raw,
          { login: { accountId: identity.id, amr: ["pwd"], remember: true } },
          { mergeWithLastSubmission: false },
        );
        return reply.redirect(to, 303);
      },
    );
  });
}

type Details = Awaited<ReturnType<OidcService["current"]["interactionDetails"]>>;

/** The code step of a sign-in whose password was right: a good code ends the interaction signed in with `pwd otp mfa`. */
async function codeStep(
  oidc: OidcService,
  deps: TotpDeps,
  request: FastifyRequest<{ Params: { uid: string }; Body: Record<string, string | undefined> }>,
  reply: FastifyReply,
): Promise<FastifyReply | string> {
  const { uid } = request.params;
  const accountId = await pendingCodeStep(deps, uid);
  if (!accountId) {
    reply.code(400);
    return loginForm(reply, uid, "", "This sign-in waited too long for its code; sign in again.");
  }
  const wait = Math.max(deps.byAccount.retryAfterMs(accountId), deps.byAddress.retryAfterMs(request.ip));
  if (wait > 0 || !(await takeCode(deps, accountId, String(request.body.otp)))) {
    deps.byAccount.fail(accountId);
    deps.byAddress.fail(request.ip);
    reply.code(wait > 0 ? 429 : 401);
    return codeForm(
      reply,
      uid,
      wait > 0
        ? `Too many wrong codes; wait ${Math.ceil(wait / 60_000)} minute(s) and try again.`
        : "That code is wrong or was used already; type the code your authenticator app shows now.",
    );
  }
  deps.byAccount.clear(accountId);
  await endCodeStep(deps, uid);
  await deps.authStore.recordLogin(accountId, "password+totp", request.ip, OTP_AMR);
  const to = await oidc.current.interactionResult(
    request.raw,
    reply.raw,
    { login: { accountId, amr: OTP_AMR, remember: true } },
    { mergeWithLastSubmission: false },
  );
  return reply.redirect(to, 303);
}

/** The interaction of this page, or undefined after answering that it expired. */
async function interaction(
  oidc: OidcService,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<Details | undefined> {
  try {
    const details = await oidc.current.interactionDetails(request.raw, reply.raw);
    if (details.uid !== (request.params as { uid: string }).uid) throw new Error("another interaction");
    return details;
  } catch {
    reply
      .code(400)
      .type("text/html; charset=utf-8")
      .send(
        page(
          "Sign-in expired",
          '<p class="error">This sign-in page has expired or was opened in another browser; start the login again from the command that sent you here.</p>',
        ),
      );
    return undefined;
  }
}

/** Ends the interaction refused (the provider tells the client `access_denied`). */
async function deny(oidc: OidcService, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const to = await oidc.current.interactionResult(
    request.raw,
    reply.raw,
    { error: "access_denied", error_description: "The sign-in was declined, or asked for by an unknown application." },
    { mergeWithLastSubmission: false },
  );
  return reply.redirect(to, 303);
}

/**
 * Grants the first-party client what it asked for (the API's scope, the
 * OpenID scopes) and ends the interaction.
 */
async function consent(
  oidc: OidcService,
  details: Details,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const { Grant } = oidc.current;
  const accountId = String(details.session?.accountId ?? "");
  const clientId = String(details.params.client_id);
  const grant = (details.grantId ? await Grant.find(details.grantId) : undefined) ?? new Grant({ accountId, clientId });
  const missing = details.prompt.details as {
    missingOIDCScope?: string[];
    missingOIDCClaims?: string[];
    missingResourceScopes?: Record<string, string[]>;
  };
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(" "));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(" "));
  }
  const grantId = await grant.save();
  const to = await oidc.current.interactionResult(request.raw, reply.raw, { consent: { grantId } });
  return reply.redirect(to, 303);
}

/** Already signed in in this browser: ask before handing a code to the command line. */
function confirmForm(reply: FastifyReply, uid: string, username: string): string {
  reply.type("text/html; charset=utf-8");
  return page(
    "Continue to Conduit",
    `<p>You are signed in as <strong>${escapeHtml(username)}</strong>. Sign in the command that sent you here as this user?</p>
<form method="post" action="/login/${encodeURIComponent(uid)}">
<button type="submit" name="consent" value="yes">Continue</button>
<button type="submit" name="consent" value="no">Cancel</button>
</form>
<p>To use another account, cancel and start the login again in a private browser window.</p>`,
  );
}

function loginForm(reply: FastifyReply, uid: string, username: string, error?: string): string {
  reply.type("text/html; charset=utf-8");
  return page(
    "Sign in to Conduit",
    `${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>\n` : ""}<form method="post" action="/login/${encodeURIComponent(uid)}">
<label>Username (user@domain)<input name="username" type="text" autocomplete="username" required value="${escapeHtml(username)}"></label>
<label>Password<input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form>
<p><a href="/login/totp">Set up a one-time code (two-factor sign-in)</a></p>`,
  );
}
