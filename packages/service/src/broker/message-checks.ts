/**
 * What the store needs of a message from an endpoint beyond its shape (which
 * `decodeMessage` checks against the protocol's schemas): Postgres text
 * cannot hold U+0000, so a NUL must be replaced or refused here, before it
 * can fail a whole batch in SQL.
 */
import type { Payload } from "@conduit/protocol";

/** Postgres text cannot hold U+0000: error texts get U+FFFD instead (results with it become failures). */
export function withoutNul<T>(value: T): T {
  if (typeof value === "string") return value.replaceAll("\u0000", "\ufffd") as T;
  if (Array.isArray(value)) return value.map(withoutNul) as T;
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withoutNul(v)])) as T;
  }
  return value;
}

export function hasNul(payload: Payload): boolean {
  return payload.data.includes("\u0000") || payload.strategy.includes("\u0000");
}
