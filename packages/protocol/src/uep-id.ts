/**
 * The UEP identifier: stable for the same (endpoint, identity, config, runtime),
 * different when any of them changes, as the seed describes. UUIDv5 under the
 * endpoint id of the canonical JSON of the other three.
 */
import { createHash } from "node:crypto";

/** JSON with object keys sorted at every level, so equal values give equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value as Record<string, unknown>).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = sortKeys(v);
    }
    return out;
  }
  return value;
}

function uuidBytes(uuid: string): Buffer {
  const hex = uuid.replace(/-/g, "");
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new TypeError(`${uuid} is not a UUID.`);
  return Buffer.from(hex, "hex");
}

/** RFC 9562 UUIDv5 (SHA-1, name-based). */
export function uuidV5(name: string, namespace: string): string {
  const hash = createHash("sha1").update(uuidBytes(namespace)).update(name, "utf8").digest();
  const b = hash.subarray(0, 16);
  b[6] = (b[6] & 0x0f) | 0x50;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = b.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function computeUepId(
  endpointId: string,
  identityId: string,
  userEndpointConfig: Record<string, unknown> | null | undefined,
  userRuntime: unknown,
): string {
  return uuidV5(
    canonicalJson({ identity: identityId, config: userEndpointConfig ?? {}, runtime: userRuntime ?? null }),
    endpointId,
  );
}
