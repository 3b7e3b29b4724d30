/**
 * Checks an endpoint's authentication policy against the identity behind a
 * request (submit, task status, result fetch): its domain (after the `@` of
 * its username) must match an include pattern, if the policy has any, and no
 * exclude pattern; with a timeout, its last login must be younger than that;
 * with `required_mfa`, that login must have had a second factor. An unmet
 * policy is an {@link AuthPolicyUnmetError} (403) naming the constraint.
 *
 * Lookups are cached for {@link POLICY_CACHE_MS}, as upstream's are: the
 * endpoint's policy, the policy itself, and a met verdict per identity and
 * policy (so a login may pass for up to a minute past a shorter timeout; the
 * policy routes warn about timeouts under a minute). An unmet verdict is never
 * cached, so a new login counts at once. Time is the service's clock option.
 */
import type { AuthorizationParameters } from "@conduit/protocol";
import { AuthPolicyUnmetError } from "../errors.js";
import type { AuthStore, LoginRecord } from "../store/auth-store.js";
import type { AuthPolicyRecord, Store } from "../store/store.js";
import type { Identity } from "../store/store-types.js";

/** How long a looked-up policy (and a met verdict) is reused. */
export const POLICY_CACHE_MS = 60_000;

/** `amr` values that say a login had a second factor. */
const SECOND_FACTORS = new Set(["mfa", "otp", "hwk", "swk", "sms", "tel", "fpt", "face", "iris", "retina", "pop"]);

/** Whether `domain` matches `pattern`, where `*` stands for any run of characters (case-insensitive). */
export function domainMatches(pattern: string, domain: string): boolean {
  const source = pattern
    .toLowerCase()
    .split("*")
    .map((part) => part.replace(/[.+?^${}()|[\]\\-]/g, "\\$&"))
    .join(".*");
  return new RegExp(`^${source}$`).test(domain.toLowerCase());
}

/** The domain of a `user@domain` username. */
export function identityDomain(username: string): string {
  return username.slice(username.lastIndexOf("@") + 1).toLowerCase();
}

/**
 * The sentence naming the first constraint of `policy` that `identity` (whose
 * newest login is `last`) does not meet at `now`, or undefined when it meets them all.
 */
export function unmetConstraint(
  policy: AuthPolicyRecord,
  identity: Identity,
  last: LoginRecord | undefined,
  now: number,
): string | undefined {
  const named = `Authentication policy "${policy.displayName}" (${policy.id})`;
  const who = identity.username;
  const domain = identityDomain(who);
  if (policy.domainInclude.length > 0 && !policy.domainInclude.some((p) => domainMatches(p, domain))) {
    return `${named} admits only identities of ${policy.domainInclude.join(", ")}, and ${who} is of ${domain}; log in with an identity of one of those domains.`;
  }
  const excluded = policy.domainExclude.find((p) => domainMatches(p, domain));
  if (excluded !== undefined) {
    return `${named} excludes identities of ${excluded}, and ${who} is of ${domain}; log in with an identity of another domain.`;
  }
  if (policy.authTimeout !== null || policy.requiredMfa) {
    if (!last) {
      return `${named} needs a recent login, and ${who} has no recorded login (an API token is not one); log in again.`;
    }
    if (policy.authTimeout !== null) {
      const age = Math.floor((now - last.authTime.getTime()) / 1000);
      if (age >= policy.authTimeout) {
        return `${named} needs a login within the last ${policy.authTimeout} seconds, and ${who} last logged in ${age} seconds ago; log in again.`;
      }
    }
    if (policy.requiredMfa && !last.amr.some((v) => SECOND_FACTORS.has(v))) {
      return `${named} needs a login with a second factor (MFA), and the last login of ${who} had none; log in again with your one-time code.`;
    }
  }
  return undefined;
}

interface Cached<T> {
  value: T;
  until: number;
}

export class PolicyGate {
  private readonly endpointPolicies = new Map<string, Cached<string | null>>();
  private readonly policies = new Map<string, Cached<AuthPolicyRecord | undefined>>();
  /** `identityId policyId` → when the met verdict stops being reused. */
  private readonly met = new Map<string, number>();

  constructor(
    private readonly store: Store,
    private readonly authStore: AuthStore,
    private readonly clock: () => number,
  ) {}

  /** Throws {@link AuthPolicyUnmetError} when the endpoint names a policy `identity` does not meet; an unknown endpoint passes (its route says so). */
  async checkEndpoint(identity: Identity, endpointId: string): Promise<void> {
    const policyId = await this.endpointPolicy(endpointId.toLowerCase());
    if (policyId !== null) await this.checkPolicy(identity, policyId);
  }

  /** Each distinct endpoint of `endpointIds` once. */
  async checkEndpoints(identity: Identity, endpointIds: Iterable<string>): Promise<void> {
    for (const id of new Set(endpointIds)) await this.checkEndpoint(identity, id);
  }

  async checkPolicy(identity: Identity, policyId: string): Promise<void> {
    const now = this.clock();
    const key = `${identity.id} ${policyId}`;
    const metUntil = this.met.get(key);
    if (metUntil !== undefined && metUntil > now) return;
    const policy = await this.policy(policyId, now);
    if (!policy) {
      const gone = `The authentication policy ${policyId} that this endpoint names no longer exists, so the endpoint accepts no requests; its owner must register it with an existing policy.`;
      throw new AuthPolicyUnmetError(gone, {
        session_message: gone,
        session_required_policies: [policyId],
        session_required_single_domain: [],
        session_required_mfa: false,
      });
    }
    const needsLogin = policy.authTimeout !== null || policy.requiredMfa;
    const last = needsLogin ? await this.authStore.lastLogin(identity.id) : undefined;
    const unmet = unmetConstraint(policy, identity, last, now);
    if (unmet === undefined) {
      this.met.set(key, now + POLICY_CACHE_MS);
      return;
    }
    this.met.delete(key);
    throw new AuthPolicyUnmetError(unmet, parametersOf(policy, unmet));
  }

  /** After a registration: the endpoint's policy is read again at its next request. */
  forgetEndpoint(endpointId: string): void {
    this.endpointPolicies.delete(endpointId.toLowerCase());
  }

  /** After a policy changed here (other replicas see it within {@link POLICY_CACHE_MS}). */
  forgetPolicy(policyId: string): void {
    this.policies.delete(policyId);
    for (const key of this.met.keys()) if (key.endsWith(` ${policyId}`)) this.met.delete(key);
  }

  private async endpointPolicy(endpointId: string): Promise<string | null> {
    const now = this.clock();
    const cached = this.endpointPolicies.get(endpointId);
    if (cached && cached.until > now) return cached.value;
    const endpoint = await this.store.getEndpoint(endpointId);
    const value = endpoint?.authPolicyId ?? null;
    // An unknown endpoint is not cached: it may be registered a moment later.
    if (endpoint) this.endpointPolicies.set(endpointId, { value, until: now + POLICY_CACHE_MS });
    return value;
  }

  private async policy(policyId: string, now: number): Promise<AuthPolicyRecord | undefined> {
    const cached = this.policies.get(policyId);
    if (cached && cached.until > now) return cached.value;
    const value = await this.store.getAuthPolicy(policyId);
    this.policies.set(policyId, { value, until: now + POLICY_CACHE_MS });
    return value;
  }
}

function parametersOf(policy: AuthPolicyRecord, message: string): AuthorizationParameters {
  return {
    session_message: message,
    session_required_policies: [policy.id],
    session_required_single_domain: [...policy.domainInclude],
    session_required_mfa: policy.requiredMfa,
  };
}
