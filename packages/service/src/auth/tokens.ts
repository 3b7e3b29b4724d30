/**
 * API tokens: 32 random bytes, base64url. Only their SHA-256 is stored, so a
 * copy of the database holds no usable token.
 */
import { createHash, randomBytes } from "node:crypto";

export function generateToken(): string {
  return randomBytes(32).toString("base64url");
}

export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/** SHA-256 of several strings, each ended by a NUL so that ("ab","c") and ("a","bc") differ. */
export function sha256Hex(...parts: string[]): string {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part, "utf8").update("\0");
  return hash.digest("hex");
}
