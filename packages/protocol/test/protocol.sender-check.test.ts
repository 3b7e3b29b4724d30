/**
 * The refusal log: one line for an account's first refused message, then at
 * most one per interval carrying the count of those not logged, per account;
 * and the sender and routing-key helpers the consumers share.
 */
import { RefusedSenders, routingKeyEndpoint, senderOf } from "@conduit/protocol";
import { afterEach, describe, expect, it, vi } from "vitest";

afterEach(() => {
  vi.useRealTimers();
});

describe("RefusedSenders", () => {
  it("logs an account's first refusal at once, then one line per minute with the count in between", () => {
    vi.useFakeTimers({ now: Date.parse("2026-01-01T00:00:00.000Z") });
    const lines: string[] = [];
    const refused = new RefusedSenders((line) => lines.push(line));
    refused.refuse("mallory", "a result for task t1");
    refused.refuse("mallory", "a result for task t2");
    refused.refuse("mallory", "a result for task t3");
    refused.refuse(undefined, "a heartbeat");
    expect(lines).toEqual([
      "Refused a result for task t1, sent by broker account mallory; it was dropped.",
      "Refused a heartbeat, sent by broker account (no user-id); it was dropped.",
    ]);

    vi.setSystemTime(Date.parse("2026-01-01T00:00:59.000Z"));
    refused.refuse("mallory", "a result for task t4");
    expect(lines).toHaveLength(2);
    vi.setSystemTime(Date.parse("2026-01-01T00:01:00.000Z"));
    refused.refuse("mallory", "a result for task t5");
    expect(lines[2]).toBe(
      "Refused a result for task t5, sent by broker account mallory; it was dropped (3 more refused from this account since 2026-01-01T00:00:00.000Z).",
    );
  });

  it("forgets the oldest accounts beyond its limit", () => {
    const lines: string[] = [];
    const refused = new RefusedSenders((line) => lines.push(line), 60_000, 2);
    for (const account of ["a", "b", "c", "a"]) refused.refuse(account, "x");
    // "a" was forgotten when "c" came, so its next refusal is logged again.
    expect(lines.map((l) => l.split("account ")[1])).toEqual([
      "a; it was dropped.",
      "b; it was dropped.",
      "c; it was dropped.",
      "a; it was dropped.",
    ]);
  });
});

describe("sender helpers", () => {
  it("reads user-id, absent or empty as undefined", () => {
    expect(senderOf({ properties: { userId: "conduit-ep-1" } as never })).toBe("conduit-ep-1");
    expect(senderOf({ properties: { userId: "" } as never })).toBeUndefined();
    expect(senderOf({ properties: {} as never })).toBeUndefined();
  });

  it("takes the endpoint id of a results or heartbeats routing key", () => {
    expect(routingKeyEndpoint("11111111-1111-4111-8111-111111111111.results")).toBe(
      "11111111-1111-4111-8111-111111111111",
    );
    expect(routingKeyEndpoint("abc")).toBe("abc");
  });
});
