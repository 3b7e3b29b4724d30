/**
 * HighThroughputEngine blocks over their lifetime, with LocalProvider blocks:
 * drain_period (a block stops taking tasks, finishes its own and exits; a
 * new block takes the waiting ones), htex_auto_scale draining partly idle
 * blocks, and the provider's parallelism. Bad values fail with one sentence.
 * (cpu_affinity and mem_per_worker: engines.high-throughput-affinity.test.ts.)
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { EngineHarness, expectGone, resultValue } from "./engines.harness.js";
import { configError, unprefetchedBlocks as hte } from "./engines.high-throughput.helpers.js";

/** Writes its block manager's pid to `mark`, waits for `gate`, then returns that pid. */
const MARK_THEN_WAIT = `async (mark, gate) => {
  const fs = process.getBuiltinModule("node:fs");
  fs.writeFileSync(mark, String(process.ppid));
  while (!fs.existsSync(gate)) await new Promise((r) => setTimeout(r, 20));
  return process.ppid;
}`;

let h: EngineHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

function markOf(path: string): number | undefined {
  return existsSync(path) ? Number(readFileSync(path, "utf8")) : undefined;
}

describe("drain_period", () => {
  it("drains a block after drain_period: it finishes its task, takes no new one, exits; a new block runs the waiting task", async () => {
    h = await EngineHarness.start(hte({ drain_period: 1 }, { init_blocks: 1, max_blocks: 1 }));
    const run = h;
    const [markA, markB, gate] = ["a", "b", "gate"].map((name) => join(run.runDir, name));
    const first = run.submit(MARK_THEN_WAIT, [markA, gate]);
    await expect.poll(() => markOf(markA), { timeout: 20_000 }).toBeGreaterThan(0);
    const second = run.submit(MARK_THEN_WAIT, [markB, gate]);
    await expect
      .poll(
        () =>
          run.logs.some((l) =>
            /Block 0 reached its drain_period \(1 s\): it takes no new tasks, finishes its 1 task\(s\) and exits\./.test(
              l,
            ),
          ),
        { timeout: 20_000 },
      )
      .toBe(true);
    // The waiting task goes to a new block (1), started although max_blocks is 1: a draining block does not count.
    await expect.poll(() => markOf(markB), { timeout: 20_000 }).toBeGreaterThan(0);
    expect(markOf(markB)).not.toBe(markOf(markA));
    writeFileSync(gate, "");
    expect(resultValue(await first)).toBe(markOf(markA));
    expect(resultValue(await second)).toBe(markOf(markB));
    await expectGone([markOf(markA) as number]);
    expect(run.logs.some((l) => /Starting block 1 with LocalProvider/.test(l))).toBe(true);
  });

  it("is refused unless a positive number of seconds, in one sentence", () => {
    expect(configError({ drain_period: -1 })).toBe(
      "engine.drain_period must be a number of seconds > 0, or left out to never drain (got -1).",
    );
  });
});

describe("htex_auto_scale", () => {
  it("drains a partly idle block while worker slots exceed the tasks, then shuts it down once its task ends", async () => {
    h = await EngineHarness.start(
      hte(
        { max_workers_per_node: 2 },
        { init_blocks: 0, min_blocks: 0, max_blocks: 2 },
        { strategy: "htex_auto_scale", max_idletime: 0.5 },
      ),
    );
    const run = h;
    const names = ["1", "2", "3", "4"];
    const marks = names.map((n) => join(run.runDir, `mark${n}`));
    const gates = names.map((n) => join(run.runDir, `gate${n}`));
    // No block before the tasks (an idle one would be released at once): the 4 tasks start 2 blocks, 2 tasks each.
    const results = names.map((_, i) => run.submit(MARK_THEN_WAIT, [marks[i], gates[i]]));
    await expect.poll(() => run.engine.status(), { timeout: 20_000 }).toMatchObject({ blocks: 2, totalWorkers: 4 });
    await expect.poll(() => marks.every((m) => markOf(m) !== undefined), { timeout: 20_000 }).toBe(true);
    const pids = marks.map((m) => markOf(m) as number);
    expect(new Set(pids).size).toBe(2);
    // One task ends on each block: both are half busy, 4 slots for 2 tasks, so one block is surplus.
    const other = pids.findIndex((pid) => pid !== pids[0]);
    writeFileSync(gates[0], "");
    writeFileSync(gates[other], "");
    await Promise.all([results[0], results[other]]);
    await expect
      .poll(() => run.logs.find((l) => /is partly idle \(1 of 2 worker\(s\) busy\)/.test(l)), { timeout: 20_000 })
      .toBeDefined();
    const held = Number(
      /Block (\d+) is partly idle/.exec(run.logs.find((l) => /is partly idle/.test(l)) as string)?.[1],
    );
    expect(run.engine.status()).toMatchObject({ blocks: 1 });
    // A new task goes to the block still serving, not the held one, whose own task still runs.
    const stillRunning = [1, 2, 3].filter((i) => i !== other);
    const fresh = (await run.run("() => process.ppid")) as number;
    const heldPid = stillRunning.map((i) => pids[i]).find((pid) => pid !== fresh) as number;
    expect(heldPid).toBeDefined();
    for (const i of stillRunning) writeFileSync(gates[i], "");
    for (const i of stillRunning) expect((await results[i]).ok).toBe(true);
    await expectGone([heldPid]);
    expect(
      run.logs.some((l) =>
        new RegExp(`Block ${held} finished its last task after being drained; shutting it down`).test(l),
      ),
    ).toBe(true);
  });
});

describe("parallelism", () => {
  it("starts blocks for parallelism × the waiting tasks, and one when it is 0", async () => {
    for (const [parallelism, blocks] of [
      [0.5, 2],
      [0, 1],
    ] as const) {
      h = await EngineHarness.start(hte({}, { init_blocks: 0, max_blocks: 4, parallelism }));
      const run = h;
      const gate = join(run.runDir, "gate");
      const results = [1, 2, 3, 4].map((i) => run.submit(MARK_THEN_WAIT, [join(run.runDir, `m${i}`), gate]));
      await expect
        .poll(() => run.engine.status(), { timeout: 20_000 })
        .toMatchObject({ blocks, totalWorkers: blocks, pendingTasks: 4 - blocks });
      // Several strategy periods later, still that many.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect(run.engine.status()).toMatchObject({ blocks });
      writeFileSync(gate, "");
      for (const r of await Promise.all(results)) expect(r.ok).toBe(true);
      await run.close();
      h = undefined;
    }
  });

  it("is refused outside 0 to 1, in one sentence", () => {
    expect(configError({ provider: { type: "LocalProvider", parallelism: 2 } })).toBe(
      "engine.provider.parallelism must be a number between 0 and 1 (got 2).",
    );
  });
});
