/**
 * The UEP's result batcher: a lone result goes at once, results that stream in
 * wait for company (the linger), and a full batch never waits.
 */
import type { ResultMessage } from "@conduit/protocol/wire";
import { describe, expect, it } from "vitest";
import { ResultBatcher } from "../src/user-endpoint/result-batcher.js";

const result = (n: number): ResultMessage => ({
  v: 1,
  kind: "result",
  taskId: `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`,
  endpointId: "00000000-0000-4000-8000-000000000000",
  uepId: "00000000-0000-4000-8000-000000000001",
  state: "success",
  completedAt: 0,
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A batcher whose sends are recorded as lists of task numbers. */
function recording(options: { maxBatch?: number; streamGapMs?: number; lingerMs?: number }) {
  const batches: number[][] = [];
  const batcher = new ResultBatcher({
    ...options,
    send: async (results) => {
      batches.push(results.map((r) => Number(r.taskId.slice(-12))));
    },
  });
  return { batches, batcher };
}

describe("ResultBatcher", () => {
  it("sends a lone result at once, whatever the linger", async () => {
    // A linger of a minute: the test would time out if a lone result waited for it.
    const { batches, batcher } = recording({ lingerMs: 60_000 });
    await batcher.add(result(1));
    expect(batches).toEqual([[1]]);
  });

  it("holds results that stream in for the linger, so they share a message", async () => {
    const { batches, batcher } = recording({ streamGapMs: 60_000, lingerMs: 200 });
    await batcher.add(result(1)); // the first of a stream goes alone
    const second = batcher.add(result(2));
    await sleep(20); // well inside the linger: without it, 2 would have gone alone by now
    expect(batches).toEqual([[1]]);
    const third = batcher.add(result(3));
    await Promise.all([second, third]);
    expect(batches).toEqual([[1], [2, 3]]);
  });

  it("sends a full batch without waiting for the linger", async () => {
    const { batches, batcher } = recording({ maxBatch: 3, streamGapMs: 60_000, lingerMs: 60_000 });
    await batcher.add(result(1));
    const second = batcher.add(result(2));
    await sleep(20);
    expect(batches).toEqual([[1]]); // lingering
    // A minute's linger: the test would time out if the full batch waited for it.
    await Promise.all([second, batcher.add(result(3)), batcher.add(result(4))]);
    expect(batches).toEqual([[1], [2, 3, 4]]);
  });

  it("after a pause, a result goes at once again", async () => {
    const { batches, batcher } = recording({ streamGapMs: 5, lingerMs: 60_000 });
    await batcher.add(result(1));
    await sleep(30); // longer than the stream gap: the stream has ended
    await batcher.add(result(2));
    expect(batches).toEqual([[1], [2]]);
  });

  it("fails every result of a batch whose send failed, and goes on with the next", async () => {
    let fail = true;
    const sent: number[][] = [];
    const batcher = new ResultBatcher({
      send: async (results) => {
        if (fail) {
          fail = false;
          throw new Error("channel closed");
        }
        sent.push(results.map((r) => Number(r.taskId.slice(-12))));
      },
    });
    await expect(batcher.add(result(1))).rejects.toThrow("channel closed");
    await batcher.add(result(2));
    expect(sent).toEqual([[2]]);
  });
});
