/**
 * The interchange sizes each block's prefetch by the rate the block answers
 * at (interchange.ts, prefetchDepth): a fake block manager on plain TCP and a
 * clock the test moves, so no figure depends on this machine's speed.
 */
import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { EngineResult, EngineTask } from "../src/engine-task.js";
import { Interchange, PREFETCH_WINDOW_MS } from "../src/engines/interchange.js";
import type { Logger } from "../src/logging.js";
import { CONDUIT_VERSION } from "../src/version.js";
import { encodeFrame, FrameReader } from "../src/worker/frames.js";

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

let interchange: Interchange | undefined;
let socket: Socket | undefined;
afterEach(async () => {
  socket?.destroy();
  await interchange?.close();
  interchange = socket = undefined;
});

function task(i: number): EngineTask {
  return {
    taskId: `t${i}`,
    functionId: "f",
    function: { strategy: "conduit.SourceCode", data: "() => null" },
    args: { strategy: "conduit.JSONData", data: '{"args":[]}' },
  };
}

/** An interchange with one registered fake block of `workers` workers; `frames()` yields the `run` frames it gets. */
async function oneBlock(workers: number, prefetch: number, clock: { ms: number }) {
  const results: EngineResult[] = [];
  interchange = new Interchange(
    { secret: "s", prefetch, heartbeatPeriodMs: 60_000, heartbeatThresholdMs: 120_000, now: () => clock.ms },
    {
      admit: () => undefined,
      connected() {},
      reserved: () => 0,
      dispatched() {},
      result: (result) => results.push(result),
      lost() {},
      closed() {},
    },
    quiet,
  );
  const port = await interchange.listen({ host: "127.0.0.1" });
  const runs: EngineTask[][] = [];
  let wake: (() => void) | undefined;
  const reader = new FrameReader(1 << 20, (raw) => {
    const message = raw as { cmd: string; tasks?: EngineTask[] };
    if (message.cmd === "run" && message.tasks) runs.push(message.tasks);
    wake?.();
  });
  const s = connect({ host: "127.0.0.1", port });
  socket = s;
  s.on("data", (chunk) => reader.push(chunk));
  await new Promise<void>((resolve) => s.once("connect", () => resolve()));
  s.write(
    encodeFrame({
      v: 1,
      cmd: "register",
      blockId: "0",
      secret: "s",
      pid: 1,
      hostname: "fake",
      workers,
      nodeVersion: process.version,
      conduitVersion: CONDUIT_VERSION,
      via: "test",
    }),
  );
  /** The next `run` frame's tasks. */
  const nextRun = async (): Promise<EngineTask[]> => {
    while (runs.length === 0) await new Promise<void>((resolve) => (wake = resolve));
    return runs.shift() as EngineTask[];
  };
  const answer = (tasks: EngineTask[]) =>
    s.write(
      encodeFrame({
        v: 1,
        cmd: "results",
        results: tasks.map((t) => ({
          taskId: t.taskId,
          ok: true,
          value: { strategy: "conduit.JSONData", data: "null" },
        })),
      }),
    );
  return { interchange, nextRun, answer, results };
}

describe("Interchange prefetch depth", () => {
  it("sends a block that answers fast more than prefetch_capacity, and one that answers slowly no more", async () => {
    const clock = { ms: 0 };
    const b = await oneBlock(1, 2, clock);
    for (let i = 0; i < 1000; i++) b.interchange.submit(task(i));
    // Before any answer: one per worker plus prefetch_capacity.
    const first = await b.nextRun();
    expect(first).toHaveLength(3);
    // 3 answers in 10 ms: 300 a second, so 6 (300 × 20 ms) may wait behind the worker: 7 are sent.
    clock.ms += 10;
    b.answer(first);
    const fast = await b.nextRun();
    expect(fast).toHaveLength(1 + Math.ceil((300 * PREFETCH_WINDOW_MS) / 1000));
    // 7 answers in 1 s: 7 a second, below prefetch_capacity's worth: back to 1 + 2.
    clock.ms += 1000;
    b.answer(fast);
    expect(await b.nextRun()).toHaveLength(3);
    expect(b.results).toHaveLength(10);
  });

  it("sends only one task per idle worker with prefetch_capacity 0, however fast the block answers", async () => {
    const clock = { ms: 0 };
    const b = await oneBlock(2, 0, clock);
    for (let i = 0; i < 100; i++) b.interchange.submit(task(i));
    const first = await b.nextRun();
    expect(first).toHaveLength(2);
    clock.ms += 10;
    b.answer(first);
    expect(await b.nextRun()).toHaveLength(2);
  });
});
