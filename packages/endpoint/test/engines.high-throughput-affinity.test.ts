/**
 * How a HighThroughputEngine block fits its node, with LocalProvider blocks:
 * cpu_affinity (workers under `taskset -c`, their CPUs checked in /proc) and
 * mem_per_worker (only as many workers as the node's available memory
 * holds). Bad values fail with one sentence.
 */
import { writeFileSync } from "node:fs";
import { freemem } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { allowedCpus, parseCpuAffinity, workerCpuSets } from "../src/worker/cpu-affinity.js";
import { EngineHarness, resultValue } from "./engines.harness.js";
import { configError, unprefetchedBlocks as hte } from "./engines.high-throughput.helpers.js";

/** The worker's rank, its CPUs as the kernel says, and OMP_NUM_THREADS, once both workers are busy. */
const WORKER_CPUS = `async (gate) => {
  const fs = process.getBuiltinModule("node:fs");
  while (!fs.existsSync(gate)) await new Promise((r) => setTimeout(r, 20));
  const cpus = /^Cpus_allowed_list:\\s*(\\S+)$/m.exec(fs.readFileSync("/proc/self/status", "utf8"))[1];
  return [process.env.CONDUIT_WORKER_RANK, cpus, process.env.OMP_NUM_THREADS];
}`;

let h: EngineHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
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
