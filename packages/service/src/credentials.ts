/**
 * First start: make sure the local admin identity (`admin@localhost`) exists,
 * and keep `credentials.json` (service URL + admin token, mode 0600) usable, so
 * the SDK and the endpoint work with no manual step. The token is written to
 * that file only, never printed.
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdir, rename, unlink, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { type Credentials, paths } from "@conduit/protocol";
import type { Store } from "./store/store.js";
import type { Identity } from "./store/store-types.js";

export const ADMIN_USERNAME = "admin@localhost";

export interface AdminCredentials {
  identity: Identity;
  token: string;
  /** The credentials file when this start wrote it. */
  written?: string;
}

/**
 * Returns the admin identity and a working token: the one in credentials.json
 * when it still works, else a new one. With `write`, the file is (re)written
 * when missing, when its token no longer works, or when the URL changed.
 */
export async function ensureAdminCredentials(
  store: Store,
  serviceUrl: string,
  write: boolean,
): Promise<AdminCredentials> {
  const identity = await store.createIdentity(ADMIN_USERNAME, {
    name: "Local administrator",
    identityProvider: "conduit",
  });
  if (!write) return { identity, token: await store.createToken(identity.id) };

  const file = paths.credentialsFile();
  const current = readCredentialsQuietly();
  const currentToken = typeof current?.token === "string" ? current.token : undefined;
  const works = currentToken !== undefined && (await store.identityForToken(currentToken))?.id === identity.id;
  const token = works ? currentToken : await store.createToken(identity.id);
  if (works && current?.service_url === serviceUrl && current.identity?.id === identity.id) {
    return { identity, token };
  }
  const credentials: Credentials = {
    service_url: serviceUrl,
    token,
    identity: { id: identity.id, username: identity.username },
  };
  await writeFileAtomically(file, `${JSON.stringify(credentials, null, 2)}\n`);
  return { identity, token, written: file };
}

function readCredentialsQuietly(): Partial<Credentials> | undefined {
  try {
    return paths.readCredentials();
  } catch {
    // Not JSON: rewritten below.
    return undefined;
  }
}

/** Temp file (0600) + rename: a reader sees the old file or the new one, never half of one. */
async function writeFileAtomically(file: string, content: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    await writeFile(temp, content, { mode: 0o600, flag: "wx" });
    await chmod(temp, 0o600);
    await rename(temp, file);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
}
