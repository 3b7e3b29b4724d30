/**
 * 5 MiB results come back intact, once each, through the real service (on
 * PGlite), RabbitMQ and endpoint: pushed to the Executor, and fetched again
 * from the store over REST. Byte-exact by SHA-256; both data strategies (a
 * StructuredData result is base64 on the wire, copied into each message as it
 * is; a JSONData one has quotes, escapes and non-ASCII text to encode).
 */
import { createHash } from "node:crypto";
import { JSON_DATA } from "@conduit/protocol";
import { Executor } from "@conduit/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type E2eStack, withStack } from "./helpers.js";

const MiB = 1024 * 1024;

let stack: E2eStack;
beforeAll(async () => {
  stack = await withStack({ endpointName: "bulky" });
}, 180_000);
afterAll(async () => {
  await stack?.dispose();
});

/** `n` pseudo-random bytes from `seed` (xorshift32): the same on the worker and here. */
function noise(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed | 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** `length` characters of text JSON must escape: quotes, backslashes, newlines, non-ASCII. */
function text(seed: number, length: number): string {
  return `${seed} "quoted" \\ back\nslash é ✓ 😀 `.repeat(Math.ceil(length / 30)).slice(0, length);
}

const sha256 = (data: Uint8Array | string) => createHash("sha256").update(data).digest("hex");

describe("large results", () => {
  it("four 5 MiB StructuredData results at once, byte for byte, once each, and again from the store", async () => {
    const ex = stack.executor();
    const seeds = [11, 22, 33, 44];
    const futures = seeds.map((seed) => ex.submit(noise, 5 * MiB, seed));
    const values = (await Promise.all(futures.map((f) => f.result()))) as Uint8Array[];
    for (const [i, seed] of seeds.entries()) {
      const value = values[i] as Uint8Array;
      expect(value).toBeInstanceOf(Uint8Array);
      expect(value.byteLength).toBe(5 * MiB);
      expect(sha256(value)).toBe(sha256(noise(5 * MiB, seed)));
    }
    // The stored copy, over REST: the row holds the same bytes.
    const [, , third] = futures;
    const stored = (await stack.client.getResult(third?.taskId ?? "")) as Uint8Array;
    expect(sha256(stored)).toBe(sha256(noise(5 * MiB, 33)));
  }, 300_000);

  it("a 5 MiB JSONData result with text JSON must escape, byte for byte", async () => {
    const ex = new Executor({ endpointId: stack.endpointId, client: stack.client, serializer: JSON_DATA });
    const future = ex.submit(text, 7, 5 * MiB);
    const value = (await future.result().finally(() => ex.shutdown())) as string;
    expect(value.length).toBe(5 * MiB);
    expect(sha256(value)).toBe(sha256(text(7, 5 * MiB)));
    expect(sha256((await stack.client.getResult(future.taskId)) as string)).toBe(sha256(text(7, 5 * MiB)));
  }, 300_000);
});
