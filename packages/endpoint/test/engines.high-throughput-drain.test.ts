/**
 * HighThroughputEngine blocks over their lifetime, with LocalProvider blocks:
 * drain_period (a block stops taking tasks, finishes its own and exits; a
 * new block takes the waiting ones), htex_auto_scale draining partly idle
 * blocks, the provider's parallelism, cpu_affinity (workers under
 * `taskset -c`, checked in /proc) and mem_per_worker (workers that fit the
 * node's available memory). Bad values fail with one sentence.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { freemem } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { EngineConfig } from "../src/engines/engine-types.js";
import { HighThroughputEngine } from "../src/engines/high-throughput-engine.js";
import { allowedCpus, parseCpuAffinity, workerCpuSets } from "../src/worker/cpu-affinity.js";
import { EngineHarness, expectGone, resultValue } from "./engines.harness.js";

/** Writes its block manager's pid to `mark`, waits for `gate`, then returns that pid. */
const MARK_THEN_WAIT = `async (mark, gate) => {
  const fs = process.getBuiltinModule("node:fs");
  fs.writeFileSync(mark, String(process.ppid));
  while (!fs.existsSync(gate)) await new Promise((r) => setTimeout(r, 20));
  return process.ppid;
}`;

/** The worker's rank, its CPUs as the kernel says, and OMP_NUM_THREADS, once both workers are busy. */
const WORKER_CPUS = `async (gate) => {
  const fs = process.getBuiltinModule("node:fs");
  while (!fs.existsSync(gate)) await new Promise((r) => setTimeout(r, 20));
  const cpus = /^Cpus_allowed_list:\\s*(\\S+)$/m.exec(fs.readFileSync("/proc/self/status", "utf8"))[1];
  return [process.env.CONDUIT_WORKER_RANK, cpus, process.env.OMP_NUM_THREADS];
}`;

function hte(
  engine: Record<string, unknown>,
  provider: Record<string, unknown> = {},
  jobStatus: Record<string, unknown> = {},
): EngineConfig {
  return {
    type: "HighThroughputEngine",
    max_workers_per_node: 1,
    prefetch_capacity: 0,
    ...engine,
    job_status_kwargs: { strategy_period: 0.2, ...jobStatus },
    provider: { type: "LocalProvider", ...provider },
  };
}

let h: EngineHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

function markOf(path: string): number | undefined {
  return existsSync(path) ? Number(readFileSync(path, "utf8")) : undefined;
}

function configError(config: Record<string, unknown>): string {
  try {
    HighThroughputEngine.parse(config);
  } catch (err) {
    return (err as Error).message;
  }
  return "no error";
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
        { init_blocks: 2, min_blocks: 0, max_blocks: 2 },
        { strategy: "htex_auto_scale", max_idletime: 0.5 },
      ),
    );
    const run = h;
    const names = ["1", "2", "3", "4"];
    const marks = names.map((n) => join(run.runDir, `mark${n}`));
    const gates = names.map((n) => join(run.runDir, `gate${n}`));
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

describe("cpu_affinity", () => {
  const cpus = allowedCpus();
  it.skipIf(cpus.length < 2)("pins each worker to its CPUs with taskset (block, block-reverse, list)", async () => {
    const [c0, c1] = [String(cpus[0]), String(cpus[cpus.length - 1])];
    for (const [affinity, expected] of [
      ["block", { "0": c0, "1": c1 }],
      ["block-reverse", { "0": c1, "1": c0 }],
      [`list:${c1}:${c0}`, { "0": c1, "1": c0 }],
    ] as const) {
      h = await EngineHarness.start(hte({ max_workers_per_node: 2, cpu_affinity: affinity }));
      const run = h;
      const gate = join(run.runDir, "gate");
      const both = [run.submit(WORKER_CPUS, [gate]), run.submit(WORKER_CPUS, [gate])];
      await expect.poll(() => run.engine.status(), { timeout: 20_000 }).toMatchObject({ idleWorkers: 0 });
      writeFileSync(gate, "");
      const seen = Object.fromEntries(
        (await Promise.all(both))
          .map((r) => resultValue(r) as string[])
          .map(([rank, list, omp]) => {
            expect(omp).toBe(String(list.split(",").length));
            return [rank, list];
          }),
      );
      if (cpus.length === 2) expect(seen, affinity).toEqual(expected);
      await run.close();
      h = undefined;
    }
  });

  it("fails the block, naming the CPUs, when a list names CPUs it may not use; and stops starting blocks", async () => {
    h = await EngineHarness.start(hte({ max_workers_per_node: 1, cpu_affinity: "list:4095" }, { init_blocks: 0 }));
    const failed = await h.submit("() => 1");
    expect(failed).toMatchObject({ ok: false, error: { code: "BLOCK_START_FAILED" } });
    if (failed.ok) return;
    expect(failed.error.message).toMatch(
      /^Blocks failed to start 3 times in a row \(the last, block 2: job \d+ exited with code 1 before its block manager registered\); fix worker_init or the provider settings in the endpoint config\. Its submit script: .*\nLast lines of its stderr [^\n]*:\n[\s\S]*cpu_affinity names CPU\(s\) 4095, which this block may not use \(it may use [\d,]+\); list only those CPUs/,
    );
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(h.logs.filter((l) => /Starting block \d+ with LocalProvider/.test(l))).toHaveLength(3);
  });

  it("shares out CPUs as upstream: block, block-reverse, alternating, list ranges", () => {
    const four = [0, 1, 2, 3];
    expect(workerCpuSets(parseCpuAffinity("block"), 2, four)).toEqual([
      [0, 1],
      [2, 3],
    ]);
    expect(workerCpuSets(parseCpuAffinity("block-reverse"), 2, four)).toEqual([
      [2, 3],
      [0, 1],
    ]);
    expect(workerCpuSets(parseCpuAffinity("alternating"), 2, four)).toEqual([
      [0, 2],
      [1, 3],
    ]);
    expect(workerCpuSets(parseCpuAffinity("list:0-2:3"), 2, four)).toEqual([[0, 1, 2], [3]]);
    expect(workerCpuSets(parseCpuAffinity("none"), 2, four)).toBeUndefined();
    expect(() => workerCpuSets(parseCpuAffinity("list:0:1:2"), 2, four)).toThrow(
      "cpu_affinity lists the CPUs of 3 worker(s) but this block runs 2; give one list entry per worker, or set max_workers_per_node (and cores_per_worker) so that 3 run",
    );
    expect(allowedCpus("Name:\tnode\nCpus_allowed_list:\t0-3,8\n")).toEqual([0, 1, 2, 3, 8]);
  });

  it("refuses unknown forms and a list of the wrong length, in one sentence", () => {
    for (const bad of ["compact", "list:", "list:1-0", 3]) {
      expect(configError({ cpu_affinity: bad })).toBe(
        `engine.cpu_affinity must be none, block, block-reverse, alternating, or list:<cpus>:<cpus>… (e.g. list:0,1:2-3) (got ${JSON.stringify(bad)}).`,
      );
    }
    expect(configError({ max_workers_per_node: 2, cpu_affinity: "list:0" })).toBe(
      "engine.cpu_affinity lists the CPUs of 1 worker(s) but engine.max_workers_per_node is 2; give one `:`-separated entry per worker, or change max_workers_per_node.",
    );
  });
});

describe("mem_per_worker", () => {
  it("runs only as many workers as the node's available memory holds (at least one)", async () => {
    // Each worker "needs" most of the free memory: one fits, not two. (Nothing is allocated.)
    const gb = (freemem() / 2 ** 30) * 0.7;
    h = await EngineHarness.start(hte({ max_workers_per_node: 2, mem_per_worker: gb }));
    expect(await h.run("() => process.env.CONDUIT_WORKER_COUNT")).toBe("1");
    expect(h.engine.status()).toMatchObject({ totalWorkers: 1 });
    await h.close();
    h = await EngineHarness.start(hte({ max_workers_per_node: 2, mem_per_worker: 0.001 }));
    expect(await h.run("() => process.env.CONDUIT_WORKER_COUNT")).toBe("2");
  });

  it("is refused unless a number > 0, in one sentence", () => {
    expect(configError({ mem_per_worker: 0 })).toBe("engine.mem_per_worker must be a number > 0 (got 0).");
  });
});
