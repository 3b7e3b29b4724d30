/**
 * The HighThroughputEngine's per-node options: one worker per accelerator
 * (each seeing only its own), workers sized by cores_per_worker,
 * working_dir, and run_in_sandbox's folder per task.
 */
import { mkdirSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { EngineHarness, hteConfig } from "./engines.harness.js";

let h: EngineHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/**
 * Marks its worker's rank in `dir`, waits until `count` workers have, and
 * returns what its worker sees: so `count` tasks return only if they ran at once, on different workers.
 */
const BARRIER = `async (dir, count) => {
  const fs = process.getBuiltinModule("node:fs");
  fs.writeFileSync(dir + "/" + process.env.CONDUIT_WORKER_RANK, "");
  while (fs.readdirSync(dir).length < count) await new Promise((r) => setTimeout(r, 20));
  const e = process.env;
  return [e.CONDUIT_WORKER_RANK, e.CUDA_VISIBLE_DEVICES, e.ROCR_VISIBLE_DEVICES, e.ZE_AFFINITY_MASK, e.ZE_ENABLE_PCI_ID_DEVICE_ORDER];
}`;

const WHERE = "() => [process.cwd(), process.env.CONDUIT_TASK_SANDBOX_DIR ?? null, process.env.CONDUIT_TASK_ID]";

describe("HighThroughputEngine per-node options", () => {
  it("runs one worker per accelerator, each seeing only its own device", async () => {
    h = await EngineHarness.start(hteConfig({ max_workers_per_node: 4, available_accelerators: ["gpu-a", "gpu-b"] }));
    const dir = join(h.runDir, "barrier");
    mkdirSync(dir);
    const seen = (await Promise.all([h.run(BARRIER, [dir, 2]), h.run(BARRIER, [dir, 2])])) as string[][];
    expect(seen.sort()).toEqual([
      ["0", "gpu-a", "gpu-a", "gpu-a", "1"],
      ["1", "gpu-b", "gpu-b", "gpu-b", "1"],
    ]);
    expect(h.engine.status()).toMatchObject({ totalWorkers: 2 });
  });

  it("sizes a block by cores_per_worker: no more workers than the node's cores allow", async () => {
    h = await EngineHarness.start(hteConfig({ max_workers_per_node: 8, cores_per_worker: availableParallelism() }));
    await h.run("() => 1");
    expect(h.engine.status()).toMatchObject({ totalWorkers: 1 });
    await h.close();
    h = await EngineHarness.start(hteConfig({ max_workers_per_node: 2, cores_per_worker: 0.25 }));
    await h.run("() => 1");
    expect(h.engine.status()).toMatchObject({ totalWorkers: 2 });
  });

  it("runs tasks in working_dir, below the UEP's folder", async () => {
    h = await EngineHarness.start(hteConfig({ working_dir: "work" }));
    expect(await h.run(WHERE)).toEqual([join(h.runDir, "work"), null, expect.any(String)]);
  });

  it("with run_in_sandbox, runs each task in a folder of its own named by CONDUIT_TASK_SANDBOX_DIR", async () => {
    h = await EngineHarness.start(hteConfig({ run_in_sandbox: true }));
    const [cwd, sandbox, taskId] = (await h.run(WHERE)) as string[];
    expect(cwd).toBe(join(h.runDir, "tasks_working_dir", taskId));
    expect(sandbox).toBe(cwd);
    const [next] = (await h.run(WHERE)) as string[];
    expect(next).not.toBe(cwd);
  });
});
