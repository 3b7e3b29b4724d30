/**
 * Which credentials a Conduit client uses, in one order everywhere (the
 * endpoint CLI, the SDK, the service's admin commands):
 *
 * 1. `CONDUIT_CLIENT_ID` + `CONDUIT_CLIENT_SECRET`, or
 *    `GLOBUS_COMPUTE_CLIENT_ID` + `GLOBUS_COMPUTE_CLIENT_SECRET`: a client
 *    identity, whose access tokens come from the client credentials grant;
 * 2. `CONDUIT_TOKEN`;
 * 3. the login cached for this service URL in `tokens.json`, refreshed with
 *    its refresh token before it expires;
 * 4. `credentials.json`, only when its URL is the service in use.
 *
 * A {@link Credential} hands out a valid access token and, after a 401, a
 * renewed one once; {@link requestWithCredential} is the REST request that
 * does both.
 *
 * ```ts
 * const credential = await obtainCredential({ serviceUrl, loginCommand: "npx conduit login", interactive: false });
 * const me = await requestWithCredential<IdentityInfo>(credential, { method: "GET", url, urlSetting: "CONDUIT_SERVICE_URL", unreachable });
 * ```
 */
import type { AuthorizationParameters } from "./api.js";
import { AuthPolicyUnmetError, ConduitApiError, ConduitError } from "./errors.js";
import { type LoginIo, loginWithCode } from "./login-flows.js";
import { API_SCOPE, discover, OAUTH_CLIENT_ID, OAuthError, type TokenResponse, tokenRequest } from "./oauth-client.js";
import { paths } from "./paths.js";
import { type RestRequest, requestJson } from "./rest-request.js";
import { type CachedLogin, readLogin, saveLogin, toCachedLogin, tokensFile, withTokensLock } from "./token-store.js";

/** Which of the four sources a credential came from. */
export type CredentialKind = "client" | "token" | "login" | "credentials_file";

export interface Credential {
  readonly kind: CredentialKind;
  /** Where it came from, for sentences: `CONDUIT_TOKEN`, `the login cached in …/tokens.json`, … */
  readonly origin: string;
  /** A valid access token: a login's or a client's is renewed first when it expires within a minute. */
  accessToken(): Promise<string>;
  /** After the service refused `rejected` (401): a renewed token, or undefined when this credential cannot renew. */
  renew(rejected: string): Promise<string | undefined>;
  /**
   * After an endpoint's authentication policy refused `rejected` (403
   * `AUTH_POLICY_UNMET`): the token of a new login made with `parameters`,
   * or undefined when this credential cannot log in again by itself (a fixed
   * token, a cached login without a person at the terminal).
   */
  reauthenticate?(rejected: string, parameters: AuthorizationParameters | undefined): Promise<string | undefined>;
  /** The command that makes a new login, named when this credential cannot run one here (no terminal). */
  readonly loginCommand?: string;
}

export interface ResolveOptions {
  /** The service in use, without a trailing slash. */
  serviceUrl: string;
  /** The command that logs in, named in sentences: `conduit-endpoint login`, `npx conduit login`. */
  loginCommand: string;
  /** @default process.env */
  env?: NodeJS.ProcessEnv;
  /**
   * The person at the terminal: a cached login then runs the code flow again
   * when an endpoint's authentication policy asks for a new login. Without
   * it, that refusal fails at once, naming `loginCommand`.
   */
  io?: LoginIo;
}

/** An access token renewed this close to its expiry is renewed before use. */
const EXPIRY_MARGIN_MS = 60_000;

const CLIENT_PAIRS = [
  ["CONDUIT_CLIENT_ID", "CONDUIT_CLIENT_SECRET"],
  ["GLOBUS_COMPUTE_CLIENT_ID", "GLOBUS_COMPUTE_CLIENT_SECRET"],
] as const;

/** The first of the four sources that is set, or undefined; throws on a half-set or conflicting client pair. */
export function resolveCredential(options: ResolveOptions): Credential | undefined {
  const env = options.env ?? process.env;
  const value = (name: string) => (env[name] === "" ? undefined : env[name]);
  const pairs: { id: string; secret: string; origin: string }[] = [];
  for (const [idName, secretName] of CLIENT_PAIRS) {
    const id = value(idName);
    const secret = value(secretName);
    if ((id === undefined) !== (secret === undefined)) {
      const [set, unset] = id === undefined ? [secretName, idName] : [idName, secretName];
      throw new ConduitError(
        "BAD_CLIENT_CREDENTIALS",
        `${set} is set but ${unset} is not; set both to a client identity's id and secret, or unset ${set}.`,
      );
    }
    if (id !== undefined && secret !== undefined) pairs.push({ id, secret, origin: `${idName} and ${secretName}` });
  }
  const [first, second] = pairs;
  if (first && second && (first.id !== second.id || first.secret !== second.secret)) {
    throw new ConduitError(
      "BAD_CLIENT_CREDENTIALS",
      `${first.origin} name a different client than ${second.origin}; unset one of the two pairs.`,
    );
  }
  if (first) return new ClientCredential(options.serviceUrl, first.id, first.secret, first.origin);

  const token = value("CONDUIT_TOKEN");
  if (token !== undefined) return new StaticCredential("token", token, "CONDUIT_TOKEN");

  const login = readLogin(options.serviceUrl);
  if (login !== undefined) return new LoginCredential(options.serviceUrl, options.loginCommand, login, options.io);

  const file = paths.readCredentials();
  if (file !== undefined && trimUrl(file.service_url) === options.serviceUrl && typeof file.token === "string") {
    return new StaticCredential("credentials_file", file.token, paths.credentialsFile());
  }
  return undefined;
}

/** {@link resolveCredential}'s credential, or the error naming the two ways to get one; for programs that never prompt. */
export function requireCredential(options: ResolveOptions): Credential {
  return resolveCredential(options) ?? throwNoCredentials(options);
}

function throwNoCredentials(options: ResolveOptions): never {
  throw noCredentials(options);
}

export interface ObtainOptions extends ResolveOptions {
  /**
   * A person is at the terminal: with no usable credentials, run the code
   * flow (link, then the code typed in) instead of failing.
   */
  interactive: boolean;
  /** How the code flow talks to that person; required with `interactive`. */
  io?: LoginIo;
}

/**
 * The credential to use: {@link resolveCredential}'s, else (interactive) a
 * new login, else an error naming the two ways out. Never waits for input
 * unless `interactive`.
 */
export async function obtainCredential(options: ObtainOptions): Promise<Credential> {
  const io = options.interactive ? options.io : undefined;
  const found = resolveCredential({ ...options, io });
  if (found !== undefined) {
    if (found.kind !== "login" || io === undefined) return found;
    try {
      await found.accessToken();
      return found;
    } catch (err) {
      if (!(err instanceof ConduitError && err.code === "LOGIN_EXPIRED")) throw err;
      io.print(err.message);
    }
  }
  if (io === undefined) throw noCredentials(options);
  await loginWithCode(options.serviceUrl, io);
  return resolveCredential({ ...options, io }) ?? unreachableResolve();
}

function unreachableResolve(): never {
  throw new ConduitError("INTERNAL_ERROR", "The login just saved is missing from tokens.json; log in again.");
}

function noCredentials(options: ResolveOptions): ConduitError {
  const file = paths.readCredentials();
  const skipped =
    file !== undefined && trimUrl(file.service_url) !== options.serviceUrl
      ? ` (${paths.credentialsFile()} is for ${file.service_url})`
      : "";
  return new ConduitError(
    "NO_CREDENTIALS",
    `No credentials for the Conduit service at ${options.serviceUrl}${skipped}: run \`${options.loginCommand}\` on a terminal, or set CONDUIT_CLIENT_ID and CONDUIT_CLIENT_SECRET to a client identity's id and secret.`,
  );
}

/**
 * The REST request with a credential's token; after a 401 the credential
 * renews once and the request is sent once more (the service checks the
 * token before it reads the body, so nothing ran). A second 401 fails with
 * the service's reason. After a 403 `AUTH_POLICY_UNMET` (the endpoint's
 * authentication policy, checked before anything is done), the credential
 * logs in again once with the answer's authorization parameters and the
 * request is sent once more; a second refusal is an {@link AuthPolicyUnmetError}.
 */
export async function requestWithCredential<T>(
  credential: Credential,
  request: Omit<RestRequest, "token">,
): Promise<T> {
  try {
    return await requestRenewing<T>(credential, request);
  } catch (err) {
    if (!(err instanceof ConduitApiError && err.code === "AUTH_POLICY_UNMET")) throw err;
    const parameters = err.authorizationParameters;
    const token = await credential.reauthenticate?.(await credential.accessToken(), parameters);
    if (token === undefined) {
      const why =
        credential.loginCommand === undefined
          ? `${credential.origin} cannot log in again by itself`
          : `no terminal is here for a new login: run \`${credential.loginCommand}\` on one, then call again`;
      throw new AuthPolicyUnmetError(`${err.message.replace(/\.$/, "")} (${why}).`, parameters);
    }
    try {
      return await requestJson<T>({ ...request, token });
    } catch (again) {
      if (!(again instanceof ConduitApiError && again.code === "AUTH_POLICY_UNMET")) throw again;
      throw new AuthPolicyUnmetError(
        `The service still refused this call after a new login with ${credential.origin}: ${again.message}`,
        again.authorizationParameters,
      );
    }
  }
}

async function requestRenewing<T>(credential: Credential, request: Omit<RestRequest, "token">): Promise<T> {
  const token = await credential.accessToken();
  try {
    return await requestJson<T>({ ...request, token });
  } catch (err) {
    if (!(err instanceof ConduitApiError && err.statusCode === 401)) throw err;
    const renewed = await credential.renew(token);
    if (renewed === undefined) throw err;
    try {
      return await requestJson<T>({ ...request, token: renewed });
    } catch (again) {
      if (!(again instanceof ConduitApiError && again.statusCode === 401)) throw again;
      throw new ConduitApiError({
        code: again.code,
        statusCode: 401,
        message: `The service refused the token from ${credential.origin} even after renewing it: ${again.message}`,
      });
    }
  }
}

export function trimUrl(url: string): string {
  return url.replace(/\/+$/, "");
}

class StaticCredential implements Credential {
  constructor(
    readonly kind: "token" | "credentials_file",
    private readonly token: string,
    readonly origin: string,
  ) {}

  accessToken(): Promise<string> {
    return Promise.resolve(this.token);
  }

  renew(): Promise<undefined> {
    return Promise.resolve(undefined);
  }
}

function fresh(expiresAt: number): boolean {
  return expiresAt - Date.now() > EXPIRY_MARGIN_MS;
}

/** A client identity: its tokens come from the client credentials grant, fetched again as they expire. */
class ClientCredential implements Credential {
  readonly kind = "client";
  private current: { token: string; expiresAt: number } | undefined;
  private fetching: Promise<string> | undefined;

  constructor(
    private readonly serviceUrl: string,
    private readonly clientId: string,
    private readonly clientSecret: string,
    readonly origin: string,
  ) {}

  accessToken(): Promise<string> {
    if (this.current && fresh(this.current.expiresAt)) return Promise.resolve(this.current.token);
    return this.fetch();
  }

  renew(rejected: string): Promise<string> {
    if (this.current && this.current.token !== rejected) return Promise.resolve(this.current.token);
    return this.fetch();
  }

  /** A new client credentials grant is a new login (the service records it); a policy has nothing more to ask of it. */
  reauthenticate(rejected: string): Promise<string> {
    return this.renew(rejected);
  }

  private fetch(): Promise<string> {
    this.fetching ??= this.grant().finally(() => {
      this.fetching = undefined;
    });
    return this.fetching;
  }

  private async grant(): Promise<string> {
    const provider = await discover(this.serviceUrl);
    let response: TokenResponse;
    try {
      response = await tokenRequest(
        provider.token_endpoint,
        { grant_type: "client_credentials", scope: API_SCOPE },
        { clientId: this.clientId, clientSecret: this.clientSecret },
      );
    } catch (err) {
      if (!(err instanceof OAuthError)) throw err;
      throw new ConduitError(
        "CLIENT_CREDENTIALS_REFUSED",
        `The Conduit service at ${this.serviceUrl} refused the client credentials in ${this.origin} (${err.reason}); check them, or ask its administrator for a new secret (conduit-service client rotate-secret).`,
        { cause: err },
      );
    }
    this.current = { token: response.access_token, expiresAt: toCachedLogin(response).expires_at };
    return response.access_token;
  }
}

/**
 * A cached login: its access token is renewed with the refresh token, under
 * the tokens file's lock. When an authentication policy asks for a new login,
 * it runs the code flow once with the person at the terminal, if there is one.
 */
class LoginCredential implements Credential {
  readonly kind = "login";
  readonly origin: string;
  private refreshing: Promise<string> | undefined;
  private relogging: Promise<string> | undefined;

  constructor(
    private readonly serviceUrl: string,
    readonly loginCommand: string,
    private login: CachedLogin,
    private readonly io?: LoginIo,
  ) {
    this.origin = `the login cached in ${tokensFile()}`;
  }

  /** A new login through the code flow (on the terminal), shared by the calls refused meanwhile. */
  reauthenticate(rejected: string, parameters: AuthorizationParameters | undefined): Promise<string | undefined> {
    const io = this.io;
    if (io === undefined) return Promise.resolve(undefined);
    if (this.login.access_token !== rejected && this.relogging === undefined) {
      return Promise.resolve(this.login.access_token);
    }
    this.relogging ??= loginWithCode(this.serviceUrl, io, { message: parameters?.session_message, fresh: true })
      .then((login) => {
        this.login = login;
        return login.access_token;
      })
      .finally(() => {
        this.relogging = undefined;
      });
    return this.relogging;
  }

  accessToken(): Promise<string> {
    if (fresh(this.login.expires_at)) return Promise.resolve(this.login.access_token);
    return this.refresh(this.login.access_token);
  }

  renew(rejected: string): Promise<string> {
    return this.refresh(rejected);
  }

  private refresh(rejected: string): Promise<string> {
    this.refreshing ??= withTokensLock(() => this.refreshLocked(rejected)).finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async refreshLocked(rejected: string): Promise<string> {
    const cached = readLogin(this.serviceUrl);
    if (cached === undefined) throw this.expired("it was logged out");
    // Another process may have refreshed it already: its rotated refresh token is the only valid one now.
    if (cached.access_token !== rejected && fresh(cached.expires_at)) {
      this.login = cached;
      return cached.access_token;
    }
    if (cached.refresh_token === undefined) throw this.expired("it has no refresh token");
    const provider = await discover(this.serviceUrl);
    let response: TokenResponse;
    try {
      response = await tokenRequest(provider.token_endpoint, {
        grant_type: "refresh_token",
        refresh_token: cached.refresh_token,
        client_id: OAUTH_CLIENT_ID,
      });
    } catch (err) {
      if (!(err instanceof OAuthError) || err.error === "unreachable" || (err.statusCode ?? 0) >= 500) throw err;
      throw this.expired(`the service refused its refresh token: ${err.reason}`, err);
    }
    this.login = toCachedLogin(response, cached.refresh_token);
    saveLogin(this.serviceUrl, this.login);
    return this.login.access_token;
  }

  private expired(why: string, cause?: unknown): ConduitError {
    return new ConduitError(
      "LOGIN_EXPIRED",
      `The login cached for ${this.serviceUrl} in ${tokensFile()} can no longer be used (${why}); log in again with \`${this.loginCommand}\`.`,
      { cause },
    );
  }
}
