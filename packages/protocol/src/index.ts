/**
 * @conduit/protocol: what the service, the endpoint and the SDK agree on — the
 * REST routes and their shapes (as data: {@link API_ROUTES}), broker messages
 * and topology, serialization strategies, task states, the UEP id, and the
 * shared errors.
 *
 * ```ts
 * import { encodeMessage, decodeMessage, uepTaskQueue } from "@conduit/protocol";
 * const body = encodeMessage({ v: 1, kind: "heartbeat", role: "mep", endpointId, period: 30, sentAt: Date.now() });
 * const msg = decodeMessage(body, "heartbeat");
 * ```
 */

export type { ApiMethod, ApiRoute, RouteBody, RouteParams, RouteQuery, RouteReply } from "./api-routes.js";
export { API_ROUTES } from "./api-routes.js";
export { API_SHARED_SCHEMAS } from "./api-shapes.js";
export { coalesceWrites } from "./coalesced-writes.js";
export type { Credential, CredentialKind, ObtainOptions, ResolveOptions } from "./credentials.js";
export {
  obtainCredential,
  requestWithCredential,
  requireCredential,
  resolveCredential,
  trimUrl,
} from "./credentials.js";
export type { LoginCommandOptions } from "./login-commands.js";
export { fetchIdentity, loginCommand, logoutCommand, whoamiCommand } from "./login-commands.js";
export type { DeviceFlowOptions, LoginIo } from "./login-flows.js";
export { loginWithCode, loginWithDevice, logout, terminalIo } from "./login-flows.js";
export type { ProviderMetadata, TokenResponse } from "./oauth-client.js";
export {
  API_SCOPE,
  DISCOVERY_PATH,
  discover,
  LOGIN_CODE_PATH,
  loginRedirectUri,
  OAUTH_CLIENT_ID,
  OAUTH_SCOPES,
  OAuthError,
  tokenRequest,
} from "./oauth-client.js";
export type { RestRequest } from "./rest-request.js";
export { requestJson } from "./rest-request.js";
export type { CachedLogin } from "./token-store.js";
export { readLogin, tokensFile } from "./token-store.js";
export * from "./wire.js";
