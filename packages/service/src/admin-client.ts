/**
 * The admin API (`/v1/admin/identities`) over HTTP, for `conduit-service user …`.
 * The commands talk to the running service rather than open its store: PGlite
 * admits one process, and the service's caches stay right. Errors are
 * ConduitApiErrors carrying the service's code and sentence.
 */
import {
  type AddIdpRequest,
  type AdminIdentityInfo,
  type AuthPolicyInfo,
  type ClientInfo,
  type ClientSecretResponse,
  type CreateAuthPolicyRequest,
  type CreateClientRequest,
  type CreateIdentityRequest,
  type CreateIdentityResponse,
  type CreateProjectRequest,
  type CreateSubscriptionRequest,
  type Credential,
  type IdpInfo,
  type IssueTokenResponse,
  type ProjectInfo,
  paths,
  type RemoveClientResponse,
  type RemoveIdentityResponse,
  type RestRequest,
  type RotateKeysResponse,
  requestWithCredential,
  requireCredential,
  type SubscriptionInfo,
  type TotpEnrolment,
} from "@conduit/protocol";
import { serviceUnreachable } from "./errors.js";

export class AdminClient {
  constructor(
    readonly serviceUrl: string,
    private readonly credential: Credential,
  ) {}

  /** The admin's client: the service at CONDUIT_SERVICE_URL (else credentials.json's), credentials in the one order. */
  static fromEnvironment(): AdminClient {
    const serviceUrl = paths.serviceUrl();
    return new AdminClient(serviceUrl, requireCredential({ serviceUrl, loginCommand: "conduit-endpoint login" }));
  }

  listIdentities(): Promise<AdminIdentityInfo[]> {
    return this.call("GET", "/v1/admin/identities");
  }

  createIdentity(request: CreateIdentityRequest): Promise<CreateIdentityResponse> {
    return this.call("POST", "/v1/admin/identities", request);
  }

  issueToken(
    username: string,
    options: { revokeOthers?: boolean; expiresInSeconds?: number } = {},
  ): Promise<IssueTokenResponse> {
    const query = new URLSearchParams();
    if (options.revokeOthers) query.set("revoke_others", "true");
    if (options.expiresInSeconds !== undefined) query.set("expires_in_seconds", String(options.expiresInSeconds));
    const search = query.size > 0 ? `?${query}` : "";
    return this.call("POST", `/v1/admin/identities/${encodeURIComponent(username)}/tokens${search}`);
  }

  removeIdentity(username: string, options: { force?: boolean } = {}): Promise<RemoveIdentityResponse> {
    const query = options.force ? "?force=true" : "";
    return this.call("DELETE", `/v1/admin/identities/${encodeURIComponent(username)}${query}`);
  }

  rotateKeys(): Promise<RotateKeysResponse> {
    return this.call("POST", "/v1/admin/keys/rotate");
  }

  listClients(): Promise<ClientInfo[]> {
    return this.call("GET", "/v1/admin/clients");
  }

  createClient(request: CreateClientRequest): Promise<ClientSecretResponse> {
    return this.call("POST", "/v1/admin/clients", request);
  }

  rotateClientSecret(clientId: string): Promise<ClientSecretResponse> {
    return this.call("POST", `/v1/admin/clients/${encodeURIComponent(clientId)}/secret`);
  }

  removeClient(clientId: string, options: { force?: boolean } = {}): Promise<RemoveClientResponse> {
    const query = options.force ? "?force=true" : "";
    return this.call("DELETE", `/v1/admin/clients/${encodeURIComponent(clientId)}${query}`);
  }

  listIdps(): Promise<IdpInfo[]> {
    return this.call("GET", "/v1/admin/idps");
  }

  addIdp(request: AddIdpRequest): Promise<IdpInfo> {
    return this.call("POST", "/v1/admin/idps", request);
  }

  removeIdp(domain: string): Promise<IdpInfo> {
    return this.call("DELETE", `/v1/admin/idps/${encodeURIComponent(domain)}`);
  }

  // ---- projects, authentication policies, subscriptions (any identity; subscriptions: admin) ----

  createProject(request: CreateProjectRequest): Promise<ProjectInfo> {
    return this.call("POST", "/v1/projects", request);
  }

  async listProjects(): Promise<ProjectInfo[]> {
    return (await this.call<{ projects: ProjectInfo[] }>("GET", "/v1/projects")).projects;
  }

  removeProject(id: string): Promise<ProjectInfo> {
    return this.call("DELETE", `/v1/projects/${encodeURIComponent(id)}`);
  }

  createPolicy(request: CreateAuthPolicyRequest): Promise<AuthPolicyInfo> {
    return this.call("POST", "/v1/auth_policies", request);
  }

  async listPolicies(): Promise<AuthPolicyInfo[]> {
    return (await this.call<{ policies: AuthPolicyInfo[] }>("GET", "/v1/auth_policies")).policies;
  }

  getPolicy(id: string): Promise<AuthPolicyInfo> {
    return this.call("GET", `/v1/auth_policies/${encodeURIComponent(id)}`);
  }

  removePolicy(id: string): Promise<AuthPolicyInfo> {
    return this.call("DELETE", `/v1/auth_policies/${encodeURIComponent(id)}`);
  }

  createSubscription(request: CreateSubscriptionRequest): Promise<SubscriptionInfo> {
    return this.call("POST", "/v1/subscriptions", request);
  }

  async listSubscriptions(): Promise<SubscriptionInfo[]> {
    return (await this.call<{ subscriptions: SubscriptionInfo[] }>("GET", "/v1/subscriptions")).subscriptions;
  }

  enrolTotp(username: string): Promise<TotpEnrolment> {
    return this.call("POST", `/v1/admin/identities/${encodeURIComponent(username)}/totp`);
  }

  private call<T>(method: RestRequest["method"], path: string, body?: unknown): Promise<T> {
    return requestWithCredential<T>(this.credential, {
      method,
      url: `${this.serviceUrl}${path}`,
      body,
      urlSetting: "CONDUIT_SERVICE_URL",
      unreachable: (cause) => serviceUnreachable(this.serviceUrl, cause),
    });
  }
}
