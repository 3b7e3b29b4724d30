/**
 * Verifies the provider's JWT access tokens locally with `jose`: signature
 * against the signing keys held in memory (read again only when a token names
 * a key not seen yet, at most every {@link KEY_RELOAD_MS}), issuer, audience,
 * `typ: at+jwt`, expiry. No store query per call: the identity behind `sub` is
 * cached {@link IDENTITY_TTL_MS}, and the deny-list of revoked grants is read
 * at most every {@link DENY_LIST_STALENESS_MS} (its stated maximum staleness).
 */
import { createLocalJWKSet, errors, type JWK, type JWTPayload, jwtVerify } from "jose";
import { accessTokenExpired, accessTokenInvalid } from "../errors.js";
import type { AuthStore } from "../store/auth-store.js";
import type { Store } from "../store/store.js";
import type { Identity } from "../store/store-types.js";
import { TtlCache } from "../tasks/memory-caches.js";
import { type OidcService, SIGNING_ALG } from "./oidc.js";

/** A revoked grant's tokens keep working at most this long. */
export const DENY_LIST_STALENESS_MS = 5_000;
const IDENTITY_TTL_MS = 5_000;
const KEY_RELOAD_MS = 5_000;
/** Longer than any token the provider makes; longer ones are refused before parsing. */
const MAX_JWT_LENGTH = 8_192;

/** Whether a bearer token is a JWT (three dot-separated parts), not an admin-made opaque token. */
export function looksLikeJwt(token: string): boolean {
  return token.split(".", 4).length === 3;
}

export class JwtVerifier {
  private jwks: ReturnType<typeof createLocalJWKSet>;
  private keysReadAt = 0;
  private readonly identities = new TtlCache<Identity | null>(IDENTITY_TTL_MS);
  private revoked = new Set<string>();
  private revokedReadAt = 0;
  private revokedReading: Promise<void> | undefined;

  constructor(
    private readonly oidc: OidcService,
    private readonly store: Store,
    private readonly authStore: AuthStore,
  ) {
    this.jwks = this.keySet();
  }

  async identify(token: string): Promise<Identity> {
    if (token.length > MAX_JWT_LENGTH) throw accessTokenInvalid("it is longer than any token this service issues");
    const payload = await this.verify(token);
    if (typeof payload.gid === "string" && (await this.revokedGrants()).has(payload.gid)) {
      throw accessTokenInvalid("its login was revoked (logout or a revoked refresh token)");
    }
    const sub = payload.sub ?? "";
    let identity = this.identities.get(sub);
    if (identity === undefined) {
      identity = (await this.store.getIdentity(sub).catch(() => undefined)) ?? null;
      this.identities.set(sub, identity);
    }
    if (!identity) throw accessTokenInvalid("its identity no longer exists on this service");
    return identity;
  }

  private async verify(token: string): Promise<JWTPayload> {
    const options = {
      issuer: this.oidc.issuer,
      audience: this.oidc.audience,
      algorithms: [SIGNING_ALG],
      typ: "at+jwt",
      requiredClaims: ["exp", "sub", "jti"],
    };
    try {
      try {
        return (await jwtVerify(token, this.jwks, options)).payload;
      } catch (err) {
        // A key made by `keys rotate` (here or on another replica) after the keys were read.
        if (!(err instanceof errors.JWKSNoMatchingKey) || Date.now() - this.keysReadAt < KEY_RELOAD_MS) throw err;
        this.keysReadAt = Date.now();
        await this.oidc.reloadKeys();
        this.jwks = this.keySet();
        return (await jwtVerify(token, this.jwks, options)).payload;
      }
    } catch (err) {
      throw this.explain(err);
    }
  }

  private explain(err: unknown): Error {
    if (err instanceof errors.JWTExpired) {
      const exp = typeof err.payload.exp === "number" ? new Date(err.payload.exp * 1000) : undefined;
      return accessTokenExpired(exp);
    }
    if (err instanceof errors.JWTClaimValidationFailed) {
      if (err.claim === "iss") return accessTokenInvalid("it was issued by another service");
      if (err.claim === "aud") return accessTokenInvalid("it is meant for another audience than this service's API");
      return accessTokenInvalid(`its ${err.claim} claim is not valid`);
    }
    if (err instanceof errors.JWKSNoMatchingKey) return accessTokenInvalid("no signing key of this service made it");
    if (err instanceof errors.JOSEAlgNotAllowed) return accessTokenInvalid(`this service accepts ${SIGNING_ALG} only`);
    if (err instanceof errors.JWSSignatureVerificationFailed) return accessTokenInvalid("its signature does not match");
    return accessTokenInvalid("it is not a well-formed signed JWT");
  }

  private keySet(): ReturnType<typeof createLocalJWKSet> {
    return createLocalJWKSet({ keys: this.oidc.publicKeys() as JWK[] });
  }

  private async revokedGrants(): Promise<Set<string>> {
    if (Date.now() - this.revokedReadAt >= DENY_LIST_STALENESS_MS) {
      this.revokedReading ??= this.authStore
        .revokedGrants()
        .then((ids) => {
          this.revoked = new Set(ids);
          this.revokedReadAt = Date.now();
        })
        .finally(() => {
          this.revokedReading = undefined;
        });
      await this.revokedReading;
    }
    return this.revoked;
  }
}
