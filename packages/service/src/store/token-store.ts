/**
 * API tokens: only a token's SHA-256 is stored, so every lookup hashes the
 * token it is given.
 */
import { generateToken, hashToken } from "../auth/tokens.js";
import { IDENTITY_COLUMNS } from "./identity-store.js";
import type { SqlExecutor } from "./sql-client.js";
import { selectList } from "./sql-select.js";
import type { Identity, TokenIdentity, TokenRecord } from "./store-types.js";
import { tokenHasExpired } from "./store-types.js";

const TOKEN_COLUMNS = selectList<TokenRecord>({
  identityId: "identity_id",
  createdAt: "created_at",
  expiresAt: "expires_at",
  lastUsedAt: "last_used_at",
});

/**
 * Creates a new token for the identity and returns it; only its hash is
 * stored. With `expiresAt`, it stops working then (null: never).
 */
export async function createToken(sql: SqlExecutor, identityId: string, expiresAt: Date | null): Promise<string> {
  const token = generateToken();
  await sql.query(
    "INSERT INTO api_tokens (token_sha256, identity_id, expires_at) VALUES ($1, $2::uuid, $3::timestamptz)",
    [hashToken(token), identityId, expiresAt?.toISOString() ?? null],
  );
  return token;
}

/** The identity a token belongs to, or undefined for an unknown or expired token. */
export async function identityForToken(sql: SqlExecutor, token: string): Promise<Identity | undefined> {
  const found = await lookupToken(sql, token);
  return found && !tokenHasExpired(found.expiresAt) ? found.identity : undefined;
}

/** The identity and expiry of a token, expired or not; undefined for an unknown token. */
export async function lookupToken(sql: SqlExecutor, token: string): Promise<TokenIdentity | undefined> {
  const { rows } = await sql.query<Identity & { expiresAt: Date | null }>(
    `SELECT ${IDENTITY_COLUMNS}, t.expires_at AS "expiresAt"
     FROM api_tokens t JOIN identities i ON i.id = t.identity_id
     WHERE t.token_sha256 = $1`,
    [hashToken(token)],
  );
  if (!rows[0]) return undefined;
  const { expiresAt, ...identity } = rows[0];
  return { identity, expiresAt };
}

/** Every identity's tokens (expired ones too), oldest first. */
export async function listTokens(sql: SqlExecutor): Promise<TokenRecord[]> {
  const { rows } = await sql.query<TokenRecord>(
    `SELECT ${TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, token_sha256`,
  );
  return rows;
}

/** Records that a token was used (callers debounce this; it is not on every request). */
export async function touchToken(sql: SqlExecutor, token: string): Promise<void> {
  await sql.query("UPDATE api_tokens SET last_used_at = now() WHERE token_sha256 = $1", [hashToken(token)]);
}

/** When a token was last used (null: never); undefined for an unknown token. */
export async function tokenLastUsed(sql: SqlExecutor, token: string): Promise<Date | null | undefined> {
  const { rows } = await sql.query<{ last_used_at: Date | null }>(
    "SELECT last_used_at FROM api_tokens WHERE token_sha256 = $1",
    [hashToken(token)],
  );
  return rows[0]?.last_used_at;
}

/** Deletes the identity's tokens but `keep`; returns how many were deleted. */
export async function revokeTokensExcept(sql: SqlExecutor, identityId: string, keep: string): Promise<number> {
  const { rows } = await sql.query<{ token_sha256: string }>(
    "DELETE FROM api_tokens WHERE identity_id = $1::uuid AND token_sha256 <> $2 RETURNING token_sha256",
    [identityId, hashToken(keep)],
  );
  return rows.length;
}
