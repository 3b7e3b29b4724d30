/**
 * The second factor of local accounts, server-rendered without JavaScript:
 *
 * - `GET/POST /login/totp`: enrolment. The username and password (and the
 *   current code, when a factor is already on: the password alone must not
 *   replace it) show a new secret and its `otpauth://` URI; the factor is on
 *   once `POST /login/totp/confirm` gets a first code of it.
 * - the code step of a sign-in (`/login/:uid` after a right password, for an
 *   account with a factor on): the login is recorded with `amr` `pwd otp mfa`,
 *   which a policy's `required_mfa` asks for.
 *
 * Pending enrolments and code steps wait in the provider's model table
 * (models `TotpEnrolment`, `OtpPending`), so any replica can answer the next
 * form. Codes are judged by the service's clock.
 */
import { randomBytes } from "node:crypto";
import type { FastifyInstance, FastifyReply } from "fastify";
import { escapeHtml, page } from "../../auth/oidc.js";
import { MAX_PASSWORD_LENGTH, verifyPassword } from "../../auth/passwords.js";
import type { FailureLimiter } from "../../auth/rate-limit.js";
import { matchTotp, newTotpSecret, otpauthUri } from "../../auth/totp.js";
import type { AuthStore } from "../../store/auth-store.js";
import type { Store } from "../../store/store.js";
import type { Identity } from "../../store/store-types.js";

/** The `amr` of a sign-in with password and one-time code. */
export const OTP_AMR = ["pwd", "otp", "mfa"];

/** How long a shown secret waits for its first code, and a right password for its code. */
const PENDING_TTL_S = 600;

export interface TotpDeps {
  store: Store;
  authStore: AuthStore;
  clock: () => number;
  /** Failed attempts per account and per address (shared with the sign-in form). */
  byAccount: FailureLimiter;
  byAddress: FailureLimiter;
  /** Shown in authenticator apps. */
  issuer: string;
}

type Form = Record<string, string | undefined>;

/** Checks a code of the identity's factor (once per time step); false for a wrong, used or absent code. */
export async function takeCode(deps: TotpDeps, identityId: string, code: string): Promise<boolean> {
  const totp = await deps.authStore.totp(identityId);
  const step = totp ? matchTotp(totp.secret, code, deps.clock()) : undefined;
  return step !== undefined && (await deps.authStore.takeTotpStep(identityId, step));
}

/** After a right password: whether the account has a factor on (then the code step waits under `uid`). */
export async function startCodeStep(deps: TotpDeps, uid: string, identity: Identity): Promise<boolean> {
  const totp = await deps.authStore.totp(identity.id);
  if (!totp?.confirmed) return false;
  await deps.authStore.adapter("OtpPending").upsert(uid, { accountId: identity.id }, PENDING_TTL_S);
  return true;
}

/** The identity whose right password waits for a code in interaction `uid`. */
export async function pendingCodeStep(deps: TotpDeps, uid: string): Promise<string | undefined> {
  const pending = await deps.authStore.adapter("OtpPending").find(uid);
  return typeof pending?.accountId === "string" ? pending.accountId : undefined;
}

export async function endCodeStep(deps: TotpDeps, uid: string): Promise<void> {
  await deps.authStore.adapter("OtpPending").destroy(uid);
}

export function codeForm(reply: FastifyReply, uid: string, error?: string): string {
  reply.type("text/html; charset=utf-8");
  return page(
    "One-time code",
    `${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>\n` : ""}<form method="post" action="/login/${encodeURIComponent(uid)}">
<label>The 6-digit code of your authenticator app<input name="otp" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]*" required></label>
<button type="submit">Sign in</button>
</form>`,
  );
}

function enrolForm(reply: FastifyReply, username: string, error?: string): string {
  reply.type("text/html; charset=utf-8");
  return page(
    "Two-factor sign-in",
    `${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>\n` : ""}<p>Sign in to set up a one-time code (an authenticator app) for your account.</p>
<form method="post" action="/login/totp">
<label>Username (user@domain)<input name="username" type="text" autocomplete="username" required value="${escapeHtml(username)}"></label>
<label>Password<input name="password" type="password" autocomplete="current-password" required></label>
<label>Current one-time code (only when two-factor sign-in is already on)<input name="otp" type="text" inputmode="numeric" autocomplete="one-time-code"></label>
<button type="submit">Continue</button>
</form>`,
  );
}

function confirmForm(reply: FastifyReply, enrolment: string, secret: string, uri: string, error?: string): string {
  reply.type("text/html; charset=utf-8");
  return page(
    "Two-factor sign-in",
    `${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>\n` : ""}<p>Add this account to your authenticator app with the link or the secret, then type the code it shows.</p>
<p><a id="otpauth" href="${escapeHtml(uri)}">${escapeHtml(uri)}</a></p>
<p>Secret: <code class="big" id="secret">${escapeHtml(secret)}</code></p>
<form method="post" action="/login/totp/confirm">
<input type="hidden" name="enrolment" value="${escapeHtml(enrolment)}"/>
<label>Code<input name="otp" type="text" inputmode="numeric" autocomplete="one-time-code" required></label>
<button type="submit">Turn on</button>
</form>`,
  );
}

/** Registers the enrolment pages on a scope that parses forms. */
export function totpPages(scope: FastifyInstance, deps: TotpDeps): void {
  const options = { config: { public: true }, schema: { hide: true } };
  scope.get("/login/totp", options, async (_request, reply) => enrolForm(reply, ""));

  scope.post<{ Body: Form }>("/login/totp", options, async (request, reply) => {
    const username = String(request.body?.username ?? "")
      .trim()
      .toLowerCase();
    const wait = Math.max(deps.byAccount.retryAfterMs(username), deps.byAddress.retryAfterMs(request.ip));
    if (wait > 0) {
      reply.code(429).header("retry-after", Math.ceil(wait / 1000));
      return enrolForm(reply, username, `Too many failed attempts; wait ${Math.ceil(wait / 60_000)} minute(s).`);
    }
    const identity = await checkPassword(deps, username, String(request.body?.password ?? ""));
    const current = identity && (await deps.authStore.totp(identity.id));
    const codeOk = !current?.confirmed || (identity && (await takeCode(deps, identity.id, request.body?.otp ?? "")));
    if (!identity || !codeOk) {
      deps.byAccount.fail(username);
      deps.byAddress.fail(request.ip);
      reply.code(401);
      const why = identity
        ? "Two-factor sign-in is already on for this account; give its current one-time code to replace it."
        : "Wrong username or password; check both (the username is user@domain) and try again.";
      return enrolForm(reply, username, why);
    }
    deps.byAccount.clear(username);
    const secret = newTotpSecret();
    const enrolment = randomBytes(24).toString("base64url");
    await deps.authStore
      .adapter("TotpEnrolment")
      .upsert(enrolment, { accountId: identity.id, secret, username: identity.username }, PENDING_TTL_S);
    return confirmForm(reply, enrolment, secret, otpauthUri(secret, identity.username, deps.issuer));
  });

  scope.post<{ Body: Form }>("/login/totp/confirm", options, async (request, reply) => {
    const enrolment = String(request.body?.enrolment ?? "");
    const adapter = deps.authStore.adapter("TotpEnrolment");
    const pending = enrolment.length > 0 && enrolment.length < 100 ? await adapter.find(enrolment) : undefined;
    const { accountId, secret, username } = (pending ?? {}) as {
      accountId?: string;
      secret?: string;
      username?: string;
    };
    if (!accountId || !secret || !username) {
      reply.code(400);
      return enrolForm(reply, "", "This setup expired or was finished; sign in to start it again.");
    }
    const step =
      deps.byAccount.retryAfterMs(username) > 0 ? undefined : matchTotp(secret, request.body?.otp ?? "", deps.clock());
    if (step === undefined) {
      deps.byAccount.fail(username);
      reply.code(401);
      return confirmForm(
        reply,
        enrolment,
        secret,
        otpauthUri(secret, username, deps.issuer),
        "That code is not the current one of this secret; check the app's clock and type the code it shows now.",
      );
    }
    await adapter.destroy(enrolment);
    await deps.authStore.setTotpSecret(accountId, secret, { confirmedAtStep: step });
    reply.type("text/html; charset=utf-8");
    return page(
      "Two-factor sign-in is on",
      `<p>From now on, signing in as <strong>${escapeHtml(username)}</strong> asks for a one-time code after the password.</p>`,
    );
  });
}

/** The identity when `password` is its local password (the sign-in form and the enrolment form). */
export async function checkPassword(
  deps: Pick<TotpDeps, "store" | "authStore">,
  username: string,
  password: string,
): Promise<Identity | undefined> {
  const identity =
    username.length > 0 && username.length <= 256 ? await deps.store.findIdentityByUsername(username) : undefined;
  const stored = identity && (await deps.authStore.passwordHash(identity.id));
  const ok =
    stored !== undefined &&
    password.length > 0 &&
    password.length <= MAX_PASSWORD_LENGTH &&
    (await verifyPassword(password, stored));
  return ok ? identity : undefined;
}
