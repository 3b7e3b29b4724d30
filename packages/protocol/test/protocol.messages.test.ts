import {
  canonicalJson,
  computeUepId,
  decodeMessage,
  encodeMessage,
  fromWireError,
  PayloadTooLargeError,
  serializeJson,
  toWireError,
  uuidV5,
} from "@conduit/protocol";
import { describe, expect, it } from "vitest";

describe("uep id", () => {
  const ep = "4ade2ce0-9c00-4d8c-b996-4dff8fbb4bd0";
  it("is a v5 UUID, stable across key order", () => {
    const a = computeUepId(ep, "id-1", { worker_init: "", b: 1 }, { node_version: "20" });
    const b = computeUepId(ep, "id-1", { b: 1, worker_init: "" }, { node_version: "20" });
    expect(a).toBe(b);
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
  it("changes with the identity, the config and the runtime", () => {
    const base = computeUepId(ep, "id-1", { worker_init: "" }, null);
    expect(computeUepId(ep, "id-2", { worker_init: "" }, null)).not.toBe(base);
    expect(computeUepId(ep, "id-1", { worker_init: "true" }, null)).not.toBe(base);
    expect(computeUepId(ep, "id-1", { worker_init: "" }, { node_version: "22" })).not.toBe(base);
  });
  it("matches the RFC 9562 v5 test vector", () => {
    // DNS namespace, "www.example.com" (RFC 9562 appendix A.4)
    expect(uuidV5("www.example.com", "6ba7b810-9dad-11d1-80b4-00c04fd430c8")).toBe(
      "2ed6657d-e927-568b-95e1-2665a8aea6a2",
    );
  });
  it("canonical JSON sorts nested keys", () => {
    expect(canonicalJson({ b: { d: 1, c: [{ z: 1, y: 2 }] }, a: null })).toBe(
      '{"a":null,"b":{"c":[{"y":2,"z":1}],"d":1}}',
    );
  });
});

describe("broker messages", () => {
  it("round-trip and check the kind", () => {
    const endpointId = "4ade2ce0-9c00-4d8c-b996-4dff8fbb4bd0";
    const body = encodeMessage({ v: 1, kind: "heartbeat", role: "mep", endpointId, period: 30, sentAt: 1 });
    expect(decodeMessage(body, "heartbeat").period).toBe(30);
    expect(() => decodeMessage(body, "task")).toThrow(/kind heartbeat is not one of task/);
  });
  it("refuse another protocol version and non-JSON", () => {
    expect(() => decodeMessage('{"v":2,"kind":"task"}', "task")).toThrow(/protocol version 2/);
    expect(() => decodeMessage("nope", "task")).toThrow(/not JSON/);
  });
});

describe("errors and data", () => {
  it("carry a remote error's name, message and stack", () => {
    const wire = toWireError(new TypeError("bad"));
    const local = fromWireError(wire);
    expect(local.name).toBe("TypeError");
    expect(local.message).toBe("bad");
    expect(local.stack).toContain("TypeError: bad");
  });
  it("say the size and the limit", () => {
    expect(new PayloadTooLargeError("Task t", 11, 10).message).toMatch(/11 bytes, over the limit of 10 bytes/);
  });
  it("refuse what JSON cannot carry", () => {
    expect(() => serializeJson(() => 1)).toThrow(/value is a function; conduit.JSONData carries plain JSON only/);
  });
});
