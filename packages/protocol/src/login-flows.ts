/**
 * The two ways a person logs in to a Conduit service from a terminal, both
 * standard OAuth 2.0 in plain `fetch`, both ending with the tokens cached in
 * `tokens.json`:
 *
 * - the authorization code flow with PKCE (S256): a link to open in any
 *   browser; the service's own page then shows a one-time code to type back
 *   in (the "native app" redirect, so nothing listens on this machine);
 * - the device authorization grant (RFC 8628), for a node without a browser
 *   nearby: a page and a short code to enter there, while this side polls.
 *
 * ```ts
 * await loginWithCode("http://127.0.0.1:8400", terminalIo(process.stderr));
 * ```
 */
import { createHash, randomBytes } from "node:crypto";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { ConduitError } from "./errors.js";
import {
  discover,
  loginRedirectUri,
  OAUTH_CLIENT_ID,
  OAUTH_SCOPES,
  OAuthError,
  type TokenResponse,
  tokenRequest,
} from "./oauth-client.js";
import { type CachedLogin, readLogin, removeLogin, saveLogin, toCachedLogin } from "./token-store.js";

/** How a login talks to the person at the terminal. */
export interface LoginIo {
  /** Shows a line (the SDK writes to stderr, so a script's stdout stays its own). */
  print(line: string): void;
  /** Shows a question and resolves the line typed in answer. */
  prompt(question: string): Promise<string>;
}

/** Lines to `output`, answers read from stdin. */
export function terminalIo(output: NodeJS.WritableStream): LoginIo {
  return {
    print: (line) => output.write(`${line}\n`),
    prompt: (question) =>
      new Promise((resolve, reject) => {
        output.write(question);
        const lines = createInterface({ input: process.stdin, terminal: false });
        lines.once("line", (line) => {
          resolve(line);
          lines.close();
        });
        lines.once("close", () =>
          reject(new ConduitError("LOGIN_FAILED", "Input ended before a code was entered; run the login again.")),
        );
      }),
  };
}

const RULE = "-".repeat(37);

export interface CodeLoginOptions {
  /** Why a login is asked for (an authentication policy's `session_message`), printed before the link. */
  message?: string;
  /** Ask the service to authenticate the person again even when its login page remembers them. */
  fresh?: boolean;
}

/** The code flow: prints the link, reads the code, exchanges it and caches the tokens. */
export async function loginWithCode(
  serviceUrl: string,
  io: LoginIo,
  options: CodeLoginOptions = {},
): Promise<CachedLogin> {
  const provider = await discover(serviceUrl);
  const verifier = base64url(randomBytes(32));
  const challenge = base64url(createHash("sha256").update(verifier).digest());
  const redirectUri = loginRedirectUri(serviceUrl);
  const url = new URL(provider.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: OAUTH_CLIENT_ID,
    redirect_uri: redirectUri,
    scope: OAUTH_SCOPES,
    code_challenge: challenge,
    code_challenge_method: "S256",
    state: base64url(randomBytes(16)),
    ...(options.fresh ? { prompt: "login" } : {}),
  }).toString();
  if (options.message) io.print(options.message);
  io.print("Please authenticate with Conduit here:");
  io.print(RULE);
  io.print(url.toString());
  io.print(RULE);
  io.print("");
  const code = (await io.prompt("Enter the resulting Authorization Code here: ")).trim();
  if (code === "") {
    throw new ConduitError(
      "LOGIN_FAILED",
      "No code was entered; run the login again and paste the code the page shows.",
    );
  }
  let response: TokenResponse;
  try {
    response = await tokenRequest(provider.token_endpoint, {
      grant_type: "authorization_code",
      code,
      redirect_uri: redirectUri,
      client_id: OAUTH_CLIENT_ID,
      code_verifier: verifier,
    });
  } catch (err) {
    if (!(err instanceof OAuthError)) throw err;
    throw new ConduitError(
      "LOGIN_FAILED",
      `The Conduit service at ${serviceUrl} refused the code (${err.reason}); run the login again and paste the code the page shows, whole and only once.`,
      { cause: err },
    );
  }
  return save(serviceUrl, response);
}

/** The device authorization endpoint's answer (RFC 8628 §3.2). */
interface DeviceAuthorization {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete?: string;
  expires_in: number;
  interval?: number;
}

export interface DeviceFlowOptions {
  /** Waits between polls; tests pass one that records the delays instead of waiting. */
  sleep?: (ms: number) => Promise<unknown>;
}

/** RFC 8628 §3.5: the default polling interval, and what each `slow_down` adds. */
const DEVICE_INTERVAL_S = 5;

/**
 * The device flow: prints the page and the code to enter there, then polls
 * the token endpoint at the interval the service asks for (longer after each
 * `slow_down`) until the person approves, denies or the code expires.
 */
export async function loginWithDevice(
  serviceUrl: string,
  io: LoginIo,
  options: DeviceFlowOptions = {},
): Promise<CachedLogin> {
  const wait = options.sleep ?? sleep;
  const provider = await discover(serviceUrl);
  if (provider.device_authorization_endpoint === undefined) {
    throw new ConduitError(
      "LOGIN_UNAVAILABLE",
      `The Conduit service at ${serviceUrl} offers no device login; log in without --device.`,
    );
  }
  let device: DeviceAuthorization;
  try {
    device = await tokenRequest<DeviceAuthorization>(provider.device_authorization_endpoint, {
      client_id: OAUTH_CLIENT_ID,
      scope: OAUTH_SCOPES,
    });
  } catch (err) {
    if (!(err instanceof OAuthError)) throw err;
    throw new ConduitError(
      "LOGIN_FAILED",
      `The Conduit service at ${serviceUrl} refused a device login (${err.reason}).`,
      {
        cause: err,
      },
    );
  }
  io.print("To log in to Conduit, open this page in a browser:");
  io.print(RULE);
  io.print(device.verification_uri_complete ?? device.verification_uri);
  io.print(RULE);
  io.print(`and enter the code ${device.user_code} (it expires in ${Math.round(device.expires_in / 60)} minutes).`);
  io.print("Waiting for the login...");
  let intervalMs = (device.interval ?? DEVICE_INTERVAL_S) * 1000;
  const deadline = Date.now() + device.expires_in * 1000;
  for (;;) {
    await wait(intervalMs);
    try {
      const response = await tokenRequest(provider.token_endpoint, {
        grant_type: "urn:ietf:params:oauth:grant-type:device_code",
        device_code: device.device_code,
        client_id: OAUTH_CLIENT_ID,
      });
      return save(serviceUrl, response);
    } catch (err) {
      if (!(err instanceof OAuthError)) throw err;
      if (err.error === "slow_down") intervalMs += DEVICE_INTERVAL_S * 1000;
      const waiting = err.error === "authorization_pending" || err.error === "slow_down" || err.error === "unreachable";
      if (!waiting || Date.now() >= deadline) {
        const why =
          err.error === "access_denied"
            ? "the login was denied"
            : err.error === "expired_token" || waiting
              ? `the code ${device.user_code} expired before the login was approved`
              : err.reason;
        throw new ConduitError("LOGIN_FAILED", `The device login did not complete: ${why}; run the login again.`, {
          cause: err,
        });
      }
    }
  }
}

/**
 * Forgets the login cached for a service, and asks the service to revoke its
 * refresh token (best effort: the local copy goes either way). Resolves
 * whether there was one.
 */
export async function logout(serviceUrl: string): Promise<boolean> {
  const login = readLogin(serviceUrl);
  if (login === undefined) return false;
  removeLogin(serviceUrl);
  try {
    const provider = await discover(serviceUrl);
    if (provider.revocation_endpoint !== undefined && login.refresh_token !== undefined) {
      await tokenRequest(provider.revocation_endpoint, {
        token: login.refresh_token,
        token_type_hint: "refresh_token",
        client_id: OAUTH_CLIENT_ID,
      });
    }
  } catch {
    // The service is gone or refuses: the token is no longer on this machine, which is what logout promises.
  }
  return true;
}

function save(serviceUrl: string, response: TokenResponse): CachedLogin {
  const login = toCachedLogin(response);
  saveLogin(serviceUrl, login);
  return login;
}

function base64url(bytes: Buffer): string {
  return bytes.toString("base64url");
}
