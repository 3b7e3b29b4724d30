/**
 * `Authorization: Bearer <token>` → identity. Known tokens are remembered for a
 * few seconds and their last use written at most once a minute, so the hot
 * path does not read and write the tokens table on every request. JWT access
 * tokens of logins and client identities (two dots) go to the {@link JwtVerifier}
 * instead, which needs no store query per call.
 */
import { tokenExpired, unauthorized } from "../errors.js";
import type { Store } from "../store/store.js";
import { type Identity, type TokenIdentity, tokenHasExpired } from "../store/store-types.js";
import { TtlCache } from "../tasks/memory-caches.js";
import { type JwtVerifier, looksLikeJwt } from "./jwt-verifier.js";

/** How long a token → identity answer is reused (a deleted token keeps working this long). */
const IDENTITY_TTL_MS = 5_000;
const TOUCH_EVERY_MS = 60_000;

export class Authenticator {
  private readonly identities = new TtlCache<TokenIdentity>(IDENTITY_TTL_MS);
  private readonly touched = new TtlCache<true>(TOUCH_EVERY_MS);
  private jwt: JwtVerifier | undefined;

  constructor(
    private readonly store: Store,
    private readonly onTouchError: (err: unknown) => void,
  ) {}

  /** Accepts JWT access tokens from now on (set once the provider is up). */
  useJwt(verifier: JwtVerifier): void {
    this.jwt = verifier;
  }

  /** The identity of a request, or a 401 ServiceError (saying so when the token expired). */
  async identify(authorization: string | undefined): Promise<Identity> {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "");
    if (!match) throw unauthorized();
    const token = match[1];
    if (looksLikeJwt(token)) {
      if (!this.jwt) throw unauthorized();
      return this.jwt.identify(token);
    }
    let found = this.identities.get(token);
    if (!found) {
      found = await this.store.lookupToken(token);
      if (!found) throw unauthorized();
      this.identities.set(token, found);
    }
    // Checked at every request, cached or not: a token stops working at its expiry, not up to a TTL later.
    const { identity, expiresAt } = found;
    if (expiresAt && tokenHasExpired(expiresAt)) throw tokenExpired(identity.username, expiresAt);
    if (!this.touched.get(token)) {
      this.touched.set(token, true);
      this.store.touchToken(token).catch(this.onTouchError);
    }
    return identity;
  }
}
