/**
 * Sign-in through an upstream OpenID Connect provider (`conduit-service idp
 * add`), with openid-client: the login page sends a user whose domain has one
 * there (authorization code + PKCE + nonce), the provider comes back to
 * `/login/federated`, and the verified ID token's claims name the identity,
 * `username@domain` — only in the provider's own domain. The identity is made
 * (a stable UUID) at its first login. What a sign-in in flight needs is kept
 * in the store (model `FederatedLogin` of the provider's table), ten minutes.
 */
import * as client from "openid-client";
import type { AuthStore, UpstreamIdp } from "../store/auth-store.js";

/** The callback path, registered at the upstream provider as `<service URL>/login/federated`. */
export const FEDERATED_CALLBACK_PATH = "/login/federated";

const PENDING_TTL_S = 600;

interface Pending {
  uid: string;
  domain: string;
  verifier: string;
  nonce: string;
  /** Set once the upstream provider vouched: the identity's username. */
  username?: string;
  /** The provider's `amr` claim (how the person signed in there). */
  amr?: string[];
}

/** Plain http is for a provider on this machine only (tests, development). */
function isLoopback(url: URL): boolean {
  return ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname);
}

export async function discover(issuer: string, clientId: string, clientSecret: string): Promise<client.Configuration> {
  const url = new URL(issuer);
  const insecure = url.protocol === "http:" && isLoopback(url);
  return client.discovery(url, clientId, clientSecret, undefined, {
    execute: insecure ? [client.allowInsecureRequests] : [],
  });
}

export class Federation {
  private readonly configs = new Map<string, Promise<client.Configuration>>();

  constructor(
    private readonly serviceUrl: string,
    private readonly authStore: AuthStore,
  ) {}

  private config(idp: UpstreamIdp): Promise<client.Configuration> {
    const key = `${idp.issuer}\n${idp.clientId}\n${idp.clientSecret}`;
    let config = this.configs.get(key);
    if (!config) {
      config = discover(idp.issuer, idp.clientId, idp.clientSecret);
      config.catch(() => this.configs.delete(key));
      this.configs.set(key, config);
    }
    return config;
  }

  /** Where to send the browser for the interaction `uid`. */
  async start(uid: string, idp: UpstreamIdp, loginHint: string): Promise<string> {
    const verifier = client.randomPKCECodeVerifier();
    const nonce = client.randomNonce();
    const state = client.randomState();
    const pending: Pending = { uid, domain: idp.domain, verifier, nonce };
    await this.authStore.adapter("FederatedLogin").upsert(state, { ...pending }, PENDING_TTL_S);
    const url = client.buildAuthorizationUrl(await this.config(idp), {
      redirect_uri: `${this.serviceUrl}${FEDERATED_CALLBACK_PATH}`,
      scope: "openid profile email",
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state,
      nonce,
      login_hint: loginHint,
    });
    return url.toString();
  }

  /**
   * The upstream provider's answer: verifies it and returns the interaction it
   * belongs to, and the `state` under which the vouched username now waits.
   */
  async callback(currentUrl: URL): Promise<{ uid: string; state: string }> {
    const state = currentUrl.searchParams.get("state") ?? "";
    const adapter = this.authStore.adapter("FederatedLogin");
    const pending = state ? ((await adapter.find(state)) as Pending | undefined) : undefined;
    if (!pending || pending.username) throw new Error("This sign-in is unknown, used or expired.");
    const idp = await this.authStore.idpForDomain(pending.domain);
    if (!idp) throw new Error(`The provider of ${pending.domain} was removed.`);
    const tokens = await client.authorizationCodeGrant(await this.config(idp), currentUrl, {
      pkceCodeVerifier: pending.verifier,
      expectedState: state,
      expectedNonce: pending.nonce,
      idTokenExpected: true,
    });
    const idClaims = tokens.claims();
    if (!idClaims) throw new Error("The provider returned no ID token.");
    // Providers put the profile claims in the ID token or only behind userinfo; the subject must agree.
    const config = await this.config(idp);
    const userinfo = config.serverMetadata().userinfo_endpoint
      ? await client.fetchUserInfo(config, tokens.access_token, idClaims.sub)
      : {};
    const username = usernameFrom({ ...userinfo, ...idClaims }, idp.domain);
    const amr = Array.isArray(idClaims.amr) ? idClaims.amr.filter((v): v is string => typeof v === "string") : [];
    await adapter.upsert(state, { ...pending, username, amr }, PENDING_TTL_S);
    return { uid: pending.uid, state };
  }

  /** The username vouched for under `state` for interaction `uid` (once), and the provider's `amr`. */
  async take(uid: string, state: string): Promise<{ username: string; issuer: string; amr: string[] } | undefined> {
    const adapter = this.authStore.adapter("FederatedLogin");
    const pending = (await adapter.find(state)) as Pending | undefined;
    if (!pending?.username || pending.uid !== uid) return undefined;
    await adapter.destroy(state);
    const idp = await this.authStore.idpForDomain(pending.domain);
    return idp && { username: pending.username, issuer: idp.issuer, amr: pending.amr ?? [] };
  }
}

/** `username@domain` from verified claims: preferred_username, else email; in the provider's domain only. */
export function usernameFrom(claims: Record<string, unknown>, domain: string): string {
  for (const claim of ["preferred_username", "email"]) {
    const value = claims[claim];
    if (typeof value !== "string" || value.length === 0) continue;
    const username = (value.includes("@") ? value : `${value}@${domain}`).toLowerCase();
    if (username.endsWith(`@${domain}`) && /^[^@\s]+@[^@\s]+$/.test(username)) return username;
  }
  throw new Error(`The provider vouched for no username in ${domain} (preferred_username or email).`);
}
