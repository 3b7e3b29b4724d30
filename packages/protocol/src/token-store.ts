/**
 * `tokens.json`: the logins cached under `CONDUIT_USER_DIR` (default
 * `~/.conduit`), one per service URL. Plain JSON in a file of mode 0600,
 * always replaced whole by an atomic rename, so a reader never sees half a
 * file; no native addon, so the SDK installs without build tools. A refresh
 * (whose refresh token the service rotates) runs under {@link withTokensLock},
 * so two processes sharing a login never both spend the same refresh token.
 *
 * ```ts
 * saveLogin("http://127.0.0.1:8400", { access_token, refresh_token, expires_at: Date.now() + 3_600_000 });
 * readLogin("http://127.0.0.1:8400")?.refresh_token;
 * ```
 */
import { randomBytes } from "node:crypto";
import {
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ConduitError } from "./errors.js";
import type { TokenResponse } from "./oauth-client.js";
import { paths } from "./paths.js";

/** One cached login. */
export interface CachedLogin {
  access_token: string;
  refresh_token?: string;
  /** When the access token expires, in ms since the epoch. */
  expires_at: number;
  scope?: string;
}

interface TokensFile {
  version: 1;
  /** Keyed by service URL, without a trailing slash. */
  logins: Record<string, CachedLogin>;
}

/** Assumed lifetime of an access token whose answer gave none. */
const DEFAULT_LIFETIME_S = 300;

/** The cache entry of a token endpoint's answer; a refresh that returned no new refresh token keeps the old one. */
export function toCachedLogin(response: TokenResponse, previousRefreshToken?: string): CachedLogin {
  const login: CachedLogin = {
    access_token: response.access_token,
    expires_at: Date.now() + (response.expires_in ?? DEFAULT_LIFETIME_S) * 1000,
  };
  const refreshToken = response.refresh_token ?? previousRefreshToken;
  if (refreshToken !== undefined) login.refresh_token = refreshToken;
  if (response.scope !== undefined) login.scope = response.scope;
  return login;
}

/** `$CONDUIT_USER_DIR/tokens.json`. */
export function tokensFile(): string {
  return join(paths.userDir(), "tokens.json");
}

function readFile(): TokensFile {
  const file = tokensFile();
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { version: 1, logins: {} };
    throw err;
  }
  let parsed: Partial<TokensFile> | undefined;
  try {
    parsed = JSON.parse(text) as Partial<TokensFile>;
  } catch {
    parsed = undefined;
  }
  if (parsed?.version !== 1 || typeof parsed.logins !== "object" || parsed.logins === null) {
    throw new ConduitError(
      "BAD_TOKENS_FILE",
      `${file} is not a Conduit tokens file; delete it and log in again (conduit-endpoint login, or npx conduit login).`,
    );
  }
  return parsed as TokensFile;
}

function writeFile(contents: TokensFile): void {
  const file = tokensFile();
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    // Created 0600 before a byte is written: the tokens are never readable by others, even for a moment.
    writeFileSync(temp, `${JSON.stringify(contents, null, 2)}\n`, { mode: 0o600, flag: "wx" });
    renameSync(temp, file);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
}

/** The login cached for a service, if any. */
export function readLogin(serviceUrl: string): CachedLogin | undefined {
  const login = readFile().logins[serviceUrl];
  return typeof login?.access_token === "string" ? login : undefined;
}

/** Caches a service's login, replacing the one before. */
export function saveLogin(serviceUrl: string, login: CachedLogin): void {
  const contents = readFile();
  contents.logins[serviceUrl] = login;
  writeFile(contents);
}

/** Forgets a service's login; resolves whether there was one. */
export function removeLogin(serviceUrl: string): boolean {
  const contents = readFile();
  if (!(serviceUrl in contents.logins)) return false;
  delete contents.logins[serviceUrl];
  writeFile(contents);
  return true;
}

/** A lock older than this was left by a process that died holding it. */
const STALE_LOCK_MS = 30_000;
const LOCK_POLL_MS = 25;

/**
 * Runs `fn` holding `tokens.json.lock` (created exclusively), so that one
 * process at a time reads, refreshes and rewrites a login.
 */
export async function withTokensLock<T>(fn: () => Promise<T>): Promise<T> {
  const lock = `${tokensFile()}.lock`;
  mkdirSync(dirname(lock), { recursive: true, mode: 0o700 });
  for (;;) {
    try {
      const fd = openSync(lock, "wx", 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    try {
      if (Date.now() - statSync(lock).mtimeMs > STALE_LOCK_MS) rmSync(lock, { force: true });
    } catch {
      // Released between our attempts: try again.
    }
    await sleep(LOCK_POLL_MS);
  }
  try {
    return await fn();
  } finally {
    try {
      unlinkSync(lock);
    } catch {
      // Taken over as stale: nothing of ours to remove.
    }
  }
}
