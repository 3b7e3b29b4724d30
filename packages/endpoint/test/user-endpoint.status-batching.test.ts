import { describe, expect, it } from "vitest";
import { StatusBatcher } from "../src/user-endpoint/status-batcher.js";

describe("UEP running-status batching", () => {
  it("sends one message for a burst of tasks", async () => {
    const sent: string[][] = [];
    const batcher = new StatusBatcher({ send: async (ids) => void sent.push(ids), intervalMs: 20 });
    for (let i = 0; i < 100; i++) batcher.add(`t${i}`);
    await expect.poll(() => sent.length).toBe(1);
    expect(sent[0]).toHaveLength(100);
  });

  it("sends a full batch at once and the rest on the timer", async () => {
    const sent: string[][] = [];
    const batcher = new StatusBatcher({ send: async (ids) => void sent.push(ids), intervalMs: 10_000, maxBatch: 500 });
    for (let i = 0; i < 501; i++) batcher.add(`t${i}`);
    expect(sent.map((b) => b.length)).toEqual([500]);
    await batcher.flush();
    expect(sent.map((b) => b.length)).toEqual([500, 1]);
  });

  it("leaves out tasks whose result came first, and survives a failed send", async () => {
    const sent: string[][] = [];
    let fail = true;
    const batcher = new StatusBatcher({
      send: async (ids) => {
        if (fail) {
          fail = false;
          throw new Error("broker gone");
        }
        sent.push(ids);
      },
    });
    batcher.add("lost");
    await batcher.flush();
    batcher.add("a");
    batcher.add("b");
    batcher.remove("a");
    await batcher.flush();
    expect(sent).toEqual([["b"]]);
  });
});
