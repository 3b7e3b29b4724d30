/**
 * The admin API (`/v1/admin/identities`) over HTTP, for `conduit-service user …`.
 * The commands talk to the running service rather than open its store: PGlite
 * admits one process, and the service's caches stay right. Errors are
 * ConduitErrors carrying the service's code and sentence.
 */
import {
  type AdminIdentityInfo,
  type ApiErrorBody,
  ConduitError,
  type CreateIdentityRequest,
  type CreateIdentityResponse,
  type IssueTokenResponse,
  paths,
  type RemoveIdentityResponse,
} from "@conduit/protocol";
import { serviceUnreachable } from "./errors.js";

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

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    let response: Response;
    try {
      response = await fetch(`${this.serviceUrl}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw serviceUnreachable(this.serviceUrl, err);
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (response.ok) return parsed as T;
    const error = parsed as Partial<ApiErrorBody> | undefined;
    if (typeof error?.code === "string" && typeof error.message === "string") {
      throw new ConduitError(error.code, error.message);
    }
    throw new ConduitError(
      "UNEXPECTED_RESPONSE",
      `${this.serviceUrl} answered ${method} ${path} with HTTP ${response.status} and no Conduit error; check that CONDUIT_SERVICE_URL points at a Conduit service.`,
    );
  }
}
