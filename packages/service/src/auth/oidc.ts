/**
 * The OpenID Connect provider inside the service (panva's oidc-provider),
 * issuer = the service's public URL. Its routes live under `/oidc/` (and
 * `/.well-known/openid-configuration`), answered by the provider itself; the
 * login pages are the service's own (login-routes.ts).
 *
 * - Access tokens are JWTs (ES256, `typ: at+jwt`) for one resource, the
 *   service API ({@link apiAudience}), living {@link ACCESS_TOKEN_TTL_S}; the
 *   Authenticator verifies them with the public keys, without the store.
 * - Signing keys are made at the first start and kept in the store; `keys
 *   rotate` adds a new one and retires the old, which is still published and
 *   verifies until its tokens have expired.
 * - Two first-party public clients: {@link CLI_CLIENT_ID}, authorization code
 *   with PKCE whose redirect is the service's page `/login/code` (it shows the
 *   code to paste), the device grant and refresh tokens (rotated); and the web
 *   console, {@link CONSOLE_CLIENT_ID} (code with PKCE to its own callback).
 *   Client identities (client credentials) come from the store.
 */
import { generateKeyPairSync, randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { API_SCOPE, OAUTH_CLIENT_ID as CLI_CLIENT_ID, LOGIN_CODE_PATH as CODE_PAGE_PATH } from "@conduit/protocol";
import type { FastifyBaseLogger } from "fastify";
import Provider, { type ClientMetadata, type Configuration, errors } from "oidc-provider";
import { type AuthStore, clientSecretHash, type SigningKeyRecord } from "../store/auth-store.js";
import type { Store } from "../store/store.js";
import { Federation } from "./federation.js";

/**
 * The client id of the CLIs and the SDK, the scope of the service API and the
 * page the code lands on: protocol's, the one definition both sides use.
 */
export { API_SCOPE, CLI_CLIENT_ID, CODE_PAGE_PATH };

/** The web console, a first-party public client (code with PKCE) whose redirect is its own callback. */
export const CONSOLE_CLIENT_ID = "conduit-console";
export const CONSOLE_CALLBACK_PATH = "/console/oidc/callback";

/** The service's own clients: signing in to them needs no consent page. */
export const FIRST_PARTY_CLIENT_IDS: ReadonlySet<string> = new Set([CLI_CLIENT_ID, CONSOLE_CLIENT_ID]);

/** Where the provider's routes live (but discovery, at the issuer's `/.well-known/…`). */
export const OIDC_PREFIX = "/oidc";

/** Access tokens (users' and clients') live one hour. */
export const ACCESS_TOKEN_TTL_S = 3600;

/** The signing algorithm of every token. */
export const SIGNING_ALG = "ES256";

/** The audience of access tokens: the service API of this issuer. */
export function apiAudience(issuer: string): string {
  return `${issuer}/v1`;
}

/** The private JWK of a new ES256 signing key. */
export function newSigningJwk(): { kid: string; jwk: Record<string, unknown> } {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const kid = randomBytes(12).toString("base64url");
  return { kid, jwk: { ...privateKey.export({ format: "jwk" }), kid, alg: SIGNING_ALG, use: "sig" } };
}

/** The public half of a private JWK. */
export function publicJwk(jwk: Record<string, unknown>): Record<string, unknown> {
  const { d: _d, ...rest } = jwk;
  return rest;
}

/** How long a retired key still verifies: its last tokens' life plus clock skew. */
export const RETIRED_KEY_GRACE_MS = (ACCESS_TOKEN_TTL_S + 600) * 1000;

export interface OidcOptions {
  issuer: string;
  authStore: AuthStore;
  store: Store;
  /** Keys the provider's cookies are signed with (a service secret). */
  cookieKey: string;
  logger: FastifyBaseLogger;
}

/**
 * The provider and its keys. The provider is rebuilt when the keys change
 * (`keys rotate`), so requests always go through {@link handle}.
 */
export class OidcService {
  private provider!: Provider;
  private keys: SigningKeyRecord[] = [];
  /** Sign-in through upstream providers (`idp add`). */
  readonly federation: Federation;

  private constructor(private readonly options: OidcOptions) {
    this.federation = new Federation(options.issuer, options.authStore);
  }

  static async start(options: OidcOptions): Promise<OidcService> {
    const oidc = new OidcService(options);
    const { kid, jwk } = newSigningJwk();
    // A no-op when a replica (or an earlier start) made the key already.
    await options.authStore.addSigningKey(kid, jwk, false);
    await oidc.reloadKeys();
    return oidc;
  }

  get issuer(): string {
    return this.options.issuer;
  }

  get audience(): string {
    return apiAudience(this.options.issuer);
  }

  /** The provider in force (rebuilt by {@link reloadKeys}). */
  get current(): Provider {
    return this.provider;
  }

  /** Public JWKs of every key that verifies: the signing one and the retired ones in their grace. */
  publicKeys(): Record<string, unknown>[] {
    return this.keys.map((k) => publicJwk(k.privateJwk));
  }

  /** Reads the keys again; rebuilds the provider when they changed. Returns whether they did. */
  async reloadKeys(): Promise<boolean> {
    await this.options.authStore.dropRetiredKeys(RETIRED_KEY_GRACE_MS);
    const keys = await this.options.authStore.signingKeys();
    // The signing key first: oidc-provider signs with the first key of the algorithm.
    keys.sort((a, b) => Number(a.retiredAt !== null) - Number(b.retiredAt !== null));
    const same = keys.length === this.keys.length && keys.every((k, i) => k.kid === this.keys[i]?.kid);
    if (same && this.provider) return false;
    this.keys = keys;
    this.provider = this.build();
    return true;
  }

  /** `keys rotate`: a new signing key; the old one verifies for {@link RETIRED_KEY_GRACE_MS} more. */
  async rotateKeys(): Promise<{ kid: string; retired: string[] }> {
    const before = this.keys.filter((k) => k.retiredAt === null).map((k) => k.kid);
    const { kid, jwk } = newSigningJwk();
    await this.options.authStore.addSigningKey(kid, jwk, true);
    await this.reloadKeys();
    return { kid, retired: before };
  }

  /** Answers a request for a provider route (the reply is hijacked by the caller). */
  handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    return this.provider.callback()(req, res) as Promise<void>;
  }

  private build(): Provider {
    const { issuer, authStore, store, cookieKey, logger } = this.options;
    const audience = apiAudience(issuer);
    const configuration: Configuration = {
      adapter: (name: string) => authStore.adapter(name),
      clients: [cliClient(issuer), consoleClient(issuer)],
      jwks: { keys: this.keys.map((k) => k.privateJwk) as never },
      cookies: { keys: [cookieKey] },
      async findAccount(_ctx, sub) {
        const identity = await store.getIdentity(sub).catch(() => undefined);
        if (!identity) return undefined;
        return {
          accountId: identity.id,
          claims: () => ({
            sub: identity.id,
            preferred_username: identity.username,
            name: identity.name ?? undefined,
            email: identity.email ?? undefined,
          }),
        };
      },
      claims: { openid: ["sub"], profile: ["preferred_username", "name"], email: ["email"] },
      scopes: ["openid", "offline_access", "profile", "email", API_SCOPE],
      features: {
        devInteractions: { enabled: false },
        deviceFlow: {
          enabled: true,
          userCodeInputSource(ctx, form, _out, err) {
            const problem = err
              ? `<p class="error" role="alert">${
                  (err as { userCode?: string }).userCode || err.name === "NoCodeError"
                    ? "That code is not valid (or was used, or expired); check it against your terminal and try again."
                    : "The sign-in was interrupted; start it again from your terminal."
                }</p>`
              : "";
            ctx.body = page(
              "Sign in a device",
              `${problem}<p>Enter the code your terminal shows:</p>${form}<button type="submit" form="op.deviceInputForm">Continue</button>`,
            );
          },
          userCodeConfirmSource(ctx, form, _client, _deviceInfo, userCode) {
            ctx.body = page(
              "Sign in a device",
              `<p>Continue only if your terminal shows this code:</p><p><code class="big">${escapeHtml(userCode)}</code></p>${form}<button type="submit" form="op.deviceConfirmForm">Continue</button>`,
            );
          },
          successSource(ctx) {
            ctx.body = page("Device signed in", "<p>Your terminal is signed in; you may close this page.</p>");
          },
        },
        clientCredentials: { enabled: true },
        revocation: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => audience,
          useGrantedResource: () => true,
          getResourceServerInfo(_ctx, resourceIndicator) {
            if (resourceIndicator !== audience) {
              throw new errors.InvalidTarget(
                `This service issues tokens for ${audience} only; ask for that resource or none.`,
              );
            }
            return {
              scope: API_SCOPE,
              audience,
              accessTokenTTL: ACCESS_TOKEN_TTL_S,
              accessTokenFormat: "jwt",
              jwt: { sign: { alg: SIGNING_ALG } },
            };
          },
        },
      },
      pkce: { required: () => true },
      enabledJWA: { idTokenSigningAlgValues: [SIGNING_ALG] },
      clientDefaults: { id_token_signed_response_alg: SIGNING_ALG },
      interactions: { url: (_ctx, interaction) => `/login/${interaction.uid}` },
      routes: {
        authorization: `${OIDC_PREFIX}/auth`,
        token: `${OIDC_PREFIX}/token`,
        jwks: `${OIDC_PREFIX}/jwks`,
        userinfo: `${OIDC_PREFIX}/me`,
        revocation: `${OIDC_PREFIX}/token/revocation`,
        introspection: `${OIDC_PREFIX}/token/introspection`,
        device_authorization: `${OIDC_PREFIX}/device/auth`,
        code_verification: `${OIDC_PREFIX}/device`,
        end_session: `${OIDC_PREFIX}/session/end`,
        registration: `${OIDC_PREFIX}/reg`,
        pushed_authorization_request: `${OIDC_PREFIX}/request`,
        backchannel_authentication: `${OIDC_PREFIX}/backchannel`,
        challenge: `${OIDC_PREFIX}/challenge`,
      },
      ttl: {
        AccessToken: ACCESS_TOKEN_TTL_S,
        ClientCredentials: ACCESS_TOKEN_TTL_S,
        AuthorizationCode: 120,
        DeviceCode: 600,
        IdToken: ACCESS_TOKEN_TTL_S,
        Interaction: 3600,
        Grant: 30 * 86_400,
        Session: 30 * 86_400,
        RefreshToken: 30 * 86_400,
      },
      // The first-party client gets a refresh token without the offline_access consent dance.
      issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed("refresh_token"),
      rotateRefreshToken: true,
      formats: {
        customizers: {
          // The grant's id lets the Authenticator refuse the tokens of a revoked grant.
          jwt(_ctx, token, jwt) {
            const grantId = (token as { grantId?: string }).grantId;
            if (grantId) jwt.payload.gid = grantId;
          },
        },
      },
      renderError(ctx, out) {
        ctx.type = "html";
        ctx.body = page(
          "Sign-in failed",
          `<p>${escapeHtml(out.error_description ?? out.error)}</p><p>Start the login again from the command that sent you here.</p>`,
        );
      },
    };
    const provider = new Provider(issuer, configuration);
    hashedClientSecrets(provider);
    unsavedSessionsStayUnsaved(provider);
    // A client identity's token is its login: recorded like a user's, for the policies.
    provider.on(
      "grant.success",
      (ctx: { ip: string; oidc: { params?: { grant_type?: unknown }; client?: { clientId: string } } }) => {
        const clientId = ctx.oidc.client?.clientId;
        if (ctx.oidc.params?.grant_type !== "client_credentials" || !clientId) return;
        authStore
          .recordLogin(clientId, "client_credentials", ctx.ip)
          .catch((err: unknown) => logger.warn({ err }, "Could not record a client identity's login."));
      },
    );
    provider.on("server_error", (_ctx: unknown, err: Error) => logger.error({ err }, "OpenID provider error."));
    return provider;
  }
}

/**
 * Client identities' secrets are kept hashed: the provider is given the hash as
 * `client_secret`, and compares the hash of what a client presents.
 */
function hashedClientSecrets(provider: Provider): void {
  const prototype = provider.Client.prototype as { compareClientSecret(actual: string): boolean };
  prototype.compareClientSecret = function compare(this: { clientSecret?: string }, actual: string): boolean {
    const expected = Buffer.from(this.clientSecret ?? "", "utf8");
    const given = Buffer.from(clientSecretHash(String(actual)), "utf8");
    return expected.length === given.length && timingSafeEqual(expected, given);
  };
}

/**
 * oidc-provider 9.13 answers 500 when a request whose session cookie names no
 * stored session touches that session (found by the fuzz suite: POST
 * /oidc/device with a made-up `_session` cookie): it insists on persisting a
 * session that was never saved. Such a session has nothing worth keeping.
 */
function unsavedSessionsStayUnsaved(provider: Provider): void {
  const prototype = provider.Session.prototype as { persist(): Promise<unknown>; exp?: number };
  const persist = prototype.persist;
  prototype.persist = function keepOrSkip(this: { exp?: number }): Promise<unknown> {
    return typeof this.exp === "number" ? persist.call(this) : Promise.resolve(undefined);
  };
}

function cliClient(issuer: string): ClientMetadata {
  return {
    client_id: CLI_CLIENT_ID,
    client_name: "Conduit command line and SDK",
    application_type: "native",
    token_endpoint_auth_method: "none",
    grant_types: ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
    response_types: ["code"],
    redirect_uris: [`${issuer}${CODE_PAGE_PATH}`],
  };
}

function consoleClient(issuer: string): ClientMetadata {
  return {
    client_id: CONSOLE_CLIENT_ID,
    client_name: "Conduit web console",
    application_type: "web",
    token_endpoint_auth_method: "none",
    grant_types: ["authorization_code"],
    response_types: ["code"],
    redirect_uris: [`${issuer}${CONSOLE_CALLBACK_PATH}`],
  };
}

export function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c,
  );
}

/** A whole server-rendered page (no JavaScript); `body` is HTML already escaped. */
export function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · Conduit</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}
input{display:block;width:100%;margin:.3rem 0 1rem;padding:.4rem;font-size:1rem}
button{padding:.5rem 1.2rem;font-size:1rem}.error{color:#b00020}code.big{font-size:1.4rem;word-break:break-all}</style>
</head><body><h1>${escapeHtml(title)}</h1>
${body}
</body></html>
`;
}
