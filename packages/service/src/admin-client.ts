/**
 * The admin API (`/v1/admin/identities`) over HTTP, for `conduit-service user …`.
 * The commands talk to the running service rather than open its store: PGlite
 * admits one process, and the service's caches stay right. Errors are
 * ConduitApiErrors carrying the service's code and sentence.
 */
import { type IdentityInfo, paths, type RestRequest, requestJson } from "@conduit/protocol";
import { serviceUnreachable } from "./errors.js";

/** POST /v1/admin/identities. */
export interface CreateIdentityRequest {
  /** `user@domain`. */
  username: string;
  name?: string;
  email?: string;
  organization?: string;
  identity_provider?: string;
  /** The first token stops working this many seconds from now; without it, it never expires. */
  token_expires_in_seconds?: number;
}

/** POST /v1/admin/identities (201). */
export interface CreateIdentityResponse {
  identity: IdentityInfo;
  /** Shown only in this answer; the service keeps its hash. */
  token: string;
  /** When the token stops working (ISO 8601); null: never. */
  token_expires_at: string | null;
}

/** One API token of an identity, as GET /v1/admin/identities lists it (its value is never shown again). */
export interface TokenInfo {
  created_at: string;
  /** Null: it never expires. */
  expires_at: string | null;
  last_used_at: string | null;
}

/** GET /v1/admin/identities: an identity with its tokens, oldest first. */
export interface AdminIdentityInfo extends IdentityInfo {
  tokens: TokenInfo[];
}

/** POST /v1/admin/identities/:username/tokens. */
export interface IssueTokenResponse extends CreateIdentityResponse {
  /** How many older tokens were revoked (0 unless `revoke_others`). */
  revoked: number;
}

/** DELETE /v1/admin/identities/:username. */
export interface RemoveIdentityResponse {
  identity: IdentityInfo;
  /** Endpoints and tasks removed with it (only with `force`). */
  endpoints: number;
  tasks: number;
}

export class AdminClient {
  constructor(
    readonly serviceUrl: string,
    private readonly token: string,
  ) {}

  /** The local admin's client: CONDUIT_SERVICE_URL / CONDUIT_TOKEN, else credentials.json. */
  static fromEnvironment(): AdminClient {
    return new AdminClient(paths.serviceUrl(), paths.token());
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

  private call<T>(method: RestRequest["method"], path: string, body?: unknown): Promise<T> {
    return requestJson<T>({
      method,
      url: `${this.serviceUrl}${path}`,
      token: this.token,
      body,
      urlSetting: "CONDUIT_SERVICE_URL",
      unreachable: (cause) => serviceUnreachable(this.serviceUrl, cause),
    });
  }
}
