/**
 * The OAuth 2.0 client side of a Conduit login, in plain `fetch`: the
 * service's OpenID Connect discovery document, and its token endpoint for the
 * grants the CLIs and the SDK use (authorization code with PKCE, refresh,
 * client credentials, the device grant of RFC 8628). The constants here are
 * the ones the service's provider registers, so both sides share one
 * definition.
 *
 * ```ts
 * const provider = await discover("http://127.0.0.1:8400");
 * const tokens = await tokenRequest(provider, { grant_type: "refresh_token", refresh_token, client_id: OAUTH_CLIENT_ID });
 * ```
 */
import { ConduitError } from "./errors.js";

/** The public ("native app") client the CLIs and the SDK log in as; no secret. */
export const OAUTH_CLIENT_ID = "conduit-cli";
/** The service's page the code flow redirects to: it shows the one-time code to paste. */
export const LOGIN_CODE_PATH = "/login/code";
/** The scope of the service API: the one scope of the resource its access tokens are for. */
export const API_SCOPE = "conduit";
/** What a login asks for: an identity, a refresh token for long runs, and the API. */
export const OAUTH_SCOPES = `openid offline_access ${API_SCOPE}`;
/** Where a service publishes its provider's metadata (OpenID Connect Discovery 1.0). */
export const DISCOVERY_PATH = "/.well-known/openid-configuration";

/** The redirect URI of the code flow for a service. */
export function loginRedirectUri(serviceUrl: string): string {
  return `${serviceUrl}${LOGIN_CODE_PATH}`;
}

/** The parts of the discovery document a Conduit client uses. */
export interface ProviderMetadata {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  device_authorization_endpoint?: string;
  revocation_endpoint?: string;
}

/** A token endpoint's successful answer (RFC 6749 §5.1). */
export interface TokenResponse {
  access_token: string;
  token_type: string;
  /** Seconds the access token lives. */
  expires_in?: number;
  refresh_token?: string;
  scope?: string;
  id_token?: string;
}

/** A token endpoint's error answer (RFC 6749 §5.2, RFC 8628 §3.5). */
export class OAuthError extends ConduitError {
  /** The `error` field, e.g. `invalid_grant`, `authorization_pending`; `unreachable` when no answer came. */
  readonly error: string;
  readonly description: string | undefined;
  readonly statusCode: number | undefined;

  constructor(error: string, description: string | undefined, statusCode: number | undefined, message: string) {
    super("OAUTH_ERROR", message);
    this.name = "OAuthError";
    this.error = error;
    this.description = description;
    this.statusCode = statusCode;
  }

  /** `error: description`, for the sentence of a caller that names its own fix. */
  get reason(): string {
    return this.description ? `${this.error}: ${this.description}` : this.error;
  }
}

const discovered = new Map<string, Promise<ProviderMetadata>>();

/** The service's provider metadata, fetched once per process. */
export function discover(serviceUrl: string): Promise<ProviderMetadata> {
  let found = discovered.get(serviceUrl);
  if (found === undefined) {
    found = fetchDiscovery(serviceUrl);
    // A failure is not kept: the next call asks again (the service may have been starting).
    found.catch(() => discovered.delete(serviceUrl));
    discovered.set(serviceUrl, found);
  }
  return found;
}

async function fetchDiscovery(serviceUrl: string): Promise<ProviderMetadata> {
  const url = `${serviceUrl}${DISCOVERY_PATH}`;
  let response: Response;
  let text: string;
  try {
    response = await fetch(url, { headers: { accept: "application/json" } });
    text = await response.text();
  } catch (err) {
    throw new ConduitError(
      "SERVICE_UNREACHABLE",
      `Cannot reach the Conduit service at ${serviceUrl} to log in (${causeOf(err)}); start it, or point CONDUIT_SERVICE_URL at a running service.`,
      { cause: err },
    );
  }
  let metadata: Partial<ProviderMetadata> | undefined;
  try {
    metadata = response.ok ? (JSON.parse(text) as Partial<ProviderMetadata>) : undefined;
  } catch {
    metadata = undefined;
  }
  if (typeof metadata?.token_endpoint !== "string" || typeof metadata.authorization_endpoint !== "string") {
    throw new ConduitError(
      "LOGIN_UNAVAILABLE",
      `The Conduit service at ${serviceUrl} offers no login (${url} answered ${response.status} without a token_endpoint); use a token from its administrator in CONDUIT_TOKEN, or upgrade the service.`,
    );
  }
  return metadata as ProviderMetadata;
}

/**
 * POSTs a form to the token endpoint (or the device authorization endpoint);
 * resolves its JSON, or throws an {@link OAuthError}. With `basicAuth`, the
 * client authenticates with HTTP Basic (`client_secret_basic`, RFC 6749 §2.3.1).
 */
export async function tokenRequest<T = TokenResponse>(
  endpoint: string,
  form: Record<string, string>,
  basicAuth?: { clientId: string; clientSecret: string },
): Promise<T> {
  const headers: Record<string, string> = {
    "content-type": "application/x-www-form-urlencoded",
    accept: "application/json",
  };
  if (basicAuth) {
    const user = encodeURIComponent(basicAuth.clientId);
    const pass = encodeURIComponent(basicAuth.clientSecret);
    headers.authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}`;
  }
  let response: Response;
  let text: string;
  try {
    response = await fetch(endpoint, { method: "POST", headers, body: new URLSearchParams(form) });
    text = await response.text();
  } catch (err) {
    throw new OAuthError("unreachable", causeOf(err), undefined, `Cannot reach ${endpoint} (${causeOf(err)}).`);
  }
  let body: Record<string, unknown> | undefined;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = undefined;
  }
  if (response.ok && body !== undefined && (typeof body.access_token === "string" || !("error" in body))) {
    return body as T;
  }
  const error = typeof body?.error === "string" ? body.error : `http_${response.status}`;
  const description = typeof body?.error_description === "string" ? body.error_description : undefined;
  const reason = description ? `${error}: ${description}` : error;
  throw new OAuthError(error, description, response.status, `${endpoint} answered ${response.status} (${reason}).`);
}

/** The short reason of a fetch failure: ECONNREFUSED, ENOTFOUND, … */
function causeOf(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}
