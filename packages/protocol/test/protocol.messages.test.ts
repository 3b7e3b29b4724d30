import { randomBytes, randomUUID } from "node:crypto";
import {
  type BrokerMessage,
  canonicalJson,
  computeUepId,
  decodeMessage,
  encodeMessage,
  fromWireError,
  PayloadTooLargeError,
  type ResultBatchMessage,
  type ResultMessage,
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
  it("carry big payloads byte for byte, whether copied in as they are or JSON-escaped", () => {
    const ids = { endpointId: randomUUID(), uepId: randomUUID(), completedAt: 1 };
    const base64 = randomBytes(300 * 1024).toString("base64");
    const escaped = `"quoted" \\ é ✓ 😀 \u0000 ${"z".repeat(100 * 1024)}`;
    const mark = "\ue000conduit-payload-data-0\ue000";
    const results: ResultMessage[] = [
      { v: 1, kind: "result", taskId: randomUUID(), ...ids, state: "success", result: { strategy: "s", data: base64 } },
      { v: 1, kind: "result", taskId: randomUUID(), ...ids, state: "success", result: { strategy: "s", data: "tiny" } },
      {
        v: 1,
        kind: "result",
        taskId: randomUUID(),
        ...ids,
        state: "success",
        result: { strategy: "j", data: escaped },
      },
      {
        v: 1,
        kind: "result",
        taskId: randomUUID(),
        ...ids,
        state: "success",
        result: { strategy: "s", data: `${base64}AB` },
      },
    ];
    const message: ResultBatchMessage = { v: 1, kind: "results", results };
    const body = encodeMessage(message);
    expect(body.equals(Buffer.from(JSON.stringify(message)))).toBe(true);
    expect(decodeMessage(body, "results")).toEqual(message);
    // A field of the message's own that holds a mark cannot misplace the data.
    const failed: ResultMessage = {
      ...(results[0] as ResultMessage),
      error: { code: "X", name: "Error", message: mark },
    };
    const tricky: ResultBatchMessage = { v: 1, kind: "results", results: [failed, results[3] as ResultMessage] };
    expect(decodeMessage(encodeMessage(tricky), "results")).toEqual(tricky);
    // A task's arguments and function, whatever the order of their keys.
    const task = {
      v: 1,
      kind: "task",
      args: { strategy: "a", data: `${base64}==` },
      function: { strategy: "f", data: base64.slice(1) },
    };
    expect(encodeMessage(task as unknown as BrokerMessage).equals(Buffer.from(JSON.stringify(task)))).toBe(true);
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
