/**
 * Where things live, one chain for every program (README "Where things live"):
 * `CONDUIT_USER_DIR` (default `~/.conduit`) holds endpoint directories, the
 * local service's data (`service/`) and `credentials.json` (mode 0600).
 * The service URL comes from `CONDUIT_SERVICE_URL`, else `credentials.json`,
 * else the default; which credentials are used for it is credentials.ts's
 * ordered resolution.
 */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { DEFAULT_SERVICE_URL } from "./api.js";
import { ConduitError } from "./errors.js";

/** Contents of `credentials.json`, written by the service at its first start. */
export interface Credentials {
  service_url: string;
  token: string;
  identity: { id: string; username: string };
}

export interface ConduitPaths {
  userDir(): string;
  credentialsFile(): string;
  serviceDataDir(): string;
  readCredentials(): Credentials | undefined;
  serviceUrl(): string;
}

function env(name: string): string | undefined {
  const value = process.env[name];
  return value === undefined || value === "" ? undefined : value;
}

export const paths: ConduitPaths = {
  userDir: () => env("CONDUIT_USER_DIR") ?? join(homedir(), ".conduit"),
  credentialsFile: () => join(paths.userDir(), "credentials.json"),
  serviceDataDir: () => join(paths.userDir(), "service"),
  readCredentials() {
    let text: string;
    try {
      text = readFileSync(paths.credentialsFile(), "utf8");
    } catch {
      return undefined;
    }
    try {
      return JSON.parse(text) as Credentials;
    } catch (err) {
      throw new ConduitError(
        "BAD_CREDENTIALS_FILE",
        `${paths.credentialsFile()} is not valid JSON; delete it and restart the service to write a new one.`,
        { cause: err },
      );
    }
  },
  serviceUrl: () =>
    (env("CONDUIT_SERVICE_URL") ?? paths.readCredentials()?.service_url ?? DEFAULT_SERVICE_URL).replace(/\/+$/, ""),
};
