/**
 * `login [--device] | logout | whoami`, the same three commands in
 * `conduit-endpoint` and the SDK's `conduit`: each resolves a sentence to
 * print (or throws one), so both CLIs read the same.
 *
 * ```ts
 * const line = await whoamiCommand({ serviceUrl, loginCommand: "npx conduit login" });
 * ```
 */
import { API_PREFIX } from "./api.js";
import { type Credential, obtainCredential, requestWithCredential } from "./credentials.js";
import { ConduitError } from "./errors.js";
import { type LoginIo, loginWithCode, loginWithDevice, logout } from "./login-flows.js";
import type { IdentityInfo } from "./messages.js";
import { tokensFile } from "./token-store.js";

export interface LoginCommandOptions {
  /** The service in use, without a trailing slash. */
  serviceUrl: string;
  /** The login command of the calling CLI, for sentences. */
  loginCommand: string;
}

/** Logs in (code flow, or the device flow) and names the identity the service now knows. */
export async function loginCommand(options: LoginCommandOptions & { device: boolean; io: LoginIo }): Promise<string> {
  if (options.device) await loginWithDevice(options.serviceUrl, options.io);
  else await loginWithCode(options.serviceUrl, options.io);
  const credential = await obtainCredential({ ...options, interactive: false });
  const me = await fetchIdentity(options.serviceUrl, credential);
  return `Logged in to ${options.serviceUrl} as ${me.username}; the tokens are kept in ${tokensFile()}.`;
}

export async function logoutCommand(options: LoginCommandOptions): Promise<string> {
  const had = await logout(options.serviceUrl);
  return had
    ? `Logged out of ${options.serviceUrl}: its tokens are removed from ${tokensFile()}.`
    : `No login for ${options.serviceUrl} is cached in ${tokensFile()}; nothing to log out of.`;
}

/** The identity the credentials in use (in the one order) stand for, and where they came from. */
export async function whoamiCommand(options: LoginCommandOptions): Promise<string> {
  const credential = await obtainCredential({ ...options, interactive: false });
  const me = await fetchIdentity(options.serviceUrl, credential);
  return `${me.username} (${me.id}) at ${options.serviceUrl}, from ${credential.origin}`;
}

/** GET /v1/whoami with a credential. */
export function fetchIdentity(serviceUrl: string, credential: Credential): Promise<IdentityInfo> {
  return requestWithCredential<IdentityInfo>(credential, {
    method: "GET",
    url: `${serviceUrl}${API_PREFIX}/whoami`,
    urlSetting: "CONDUIT_SERVICE_URL",
    unreachable: (cause) =>
      new ConduitError(
        "SERVICE_UNREACHABLE",
        `Cannot reach the Conduit service at ${serviceUrl}; start it, or point CONDUIT_SERVICE_URL at a running service.`,
        { cause },
      ),
  });
}
