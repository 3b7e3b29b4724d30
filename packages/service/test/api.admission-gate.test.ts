/**
 * AdmissionGate: at most `limit` requests of a route are handled at once, the
 * others wait (before their body is read) in the order they came, and a freed
 * place is handed on in a later macrotask, not inside the turn that freed it.
 */
import type { AddressInfo } from "node:net";
import { setImmediate as nextMacrotask } from "node:timers/promises";
import Fastify from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { AdmissionGate } from "../src/api/admission-gate.js";

/** Lets every queued microtask (and the microtasks they queue) run, but no macrotask. */
async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

describe("AdmissionGate", () => {
  it("admits up to its limit at once and the rest first come, first served", async () => {
    const gate = new AdmissionGate(2);
    const order: number[] = [];
    const entered = [1, 2, 3, 4, 5].map((n) => gate.enter().then(() => order.push(n)));
    await flushMicrotasks();
    expect(order).toEqual([1, 2]);
    expect([gate.active, gate.queued]).toEqual([2, 3]);

    gate.leave();
    gate.leave();
    await Promise.all(entered.slice(0, 4));
    expect(order).toEqual([1, 2, 3, 4]);
    expect([gate.active, gate.queued]).toEqual([2, 1]);

    gate.leave();
    await entered[4];
    expect(order).toEqual([1, 2, 3, 4, 5]);
    for (let i = 0; i < 2; i++) gate.leave();
    expect([gate.active, gate.queued]).toEqual([0, 0]);
  });

  it("hands a freed place on in a later macrotask, not in the turn that freed it", async () => {
    const gate = new AdmissionGate(1);
    await gate.enter();
    let admitted = false;
    const waiting = gate.enter().then(() => {
      admitted = true;
    });
    gate.leave();
    await flushMicrotasks();
    expect(admitted).toBe(false);
    await nextMacrotask();
    await waiting;
    expect(admitted).toBe(true);
    expect(gate.active).toBe(1);
  });

  it("refuses a limit below one", () => {
    expect(() => new AdmissionGate(0)).toThrow(/limit must be a whole number ≥ 1; got 0/);
    expect(() => new AdmissionGate(1.5)).toThrow(RangeError);
  });
});

describe("AdmissionGate as a route's onRequest hook", () => {
  const apps: Array<{ close(): Promise<unknown> }> = [];
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
  });

  /** A server whose POST /work, gated at one, parses its body and waits until the test releases it. */
  async function gatedServer() {
    const gate = new AdmissionGate(1);
    const app = Fastify();
    apps.push(app);
    const parsed: string[] = [];
    const releases = new Map<string, () => void>();
    app.addHook("preValidation", async (request) => {
      parsed.push((request.body as { id: string }).id);
    });
    app.post("/work", { onRequest: gate.onRequest }, async (request) => {
      const { id } = request.body as { id: string };
      await new Promise<void>((resolve) => releases.set(id, resolve));
      return { id };
    });
    await app.listen({ port: 0, host: "127.0.0.1" });
    const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/work`;
    const post = (id: string, signal?: AbortSignal) =>
      fetch(url, {
        method: "POST",
        body: JSON.stringify({ id }),
        headers: { "content-type": "application/json" },
        signal,
      });
    const until = async (check: () => boolean) => {
      while (!check()) await new Promise((r) => setTimeout(r, 5));
    };
    return { gate, parsed, releases, post, until };
  }

  it("reads the body of a waiting request only once the one before it answered", async () => {
    const { gate, parsed, releases, post, until } = await gatedServer();
    const first = post("a");
    await until(() => releases.has("a"));
    const second = post("b");
    await until(() => gate.queued === 1);
    expect(parsed).toEqual(["a"]);

    releases.get("a")?.();
    expect(await (await first).json()).toEqual({ id: "a" });
    await until(() => releases.has("b"));
    expect(parsed).toEqual(["a", "b"]);
    releases.get("b")?.();
    expect(await (await second).json()).toEqual({ id: "b" });
    await until(() => gate.active === 0);
  });

  it("frees the place of a request whose client went away while it waited", async () => {
    const { gate, releases, post, until } = await gatedServer();
    const first = post("a");
    await until(() => releases.has("a"));
    const abort = new AbortController();
    const gone = post("gone", abort.signal).catch((err: Error) => err.name);
    await until(() => gate.queued === 1);
    abort.abort();
    expect(await gone).toBe("AbortError");

    releases.get("a")?.();
    await first;
    // The aborted request took its place and gave it back: the next one is not stuck behind it.
    const third = post("c");
    await until(() => releases.has("c"));
    releases.get("c")?.();
    // Its body may have arrived before the abort: then its handler ran, and answers nobody.
    releases.get("gone")?.();
    expect(await (await third).json()).toEqual({ id: "c" });
    await until(() => gate.active === 0);
  });
});
