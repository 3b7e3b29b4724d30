/**
 * Shared by the HighThroughputEngine tests of blocks over their life
 * (scaling, drain, affinity): an engine of LocalProvider blocks of one worker
 * each, scaling every 0.2 s, and the sentence a configuration is refused with;
 * and by those of a task that hangs in its worker (engines.high-throughput,
 * prefetch): the task, and the worker's and block manager's pids it leaves.
 */
import { readFileSync } from "node:fs";
import { expect } from "vitest";
import type { EngineConfig } from "../src/engines/engine-types.js";
import { HighThroughputEngine } from "../src/engines/high-throughput-engine.js";
import { readOr } from "./engines.harness.js";

type Options = Record<string, unknown>;

/**
 * A HighThroughputEngine of LocalProvider blocks, one worker a block, its
 * strategy run every 0.2 s; `engine`, `provider` and `jobStatus` (its
 * `job_status_kwargs`) add to or override those. Unlike `hteConfig` in
 * engines.harness.ts it sets none of the provider's block counts.
 */
export function localBlocks(engine: Options = {}, provider: Options = {}, jobStatus: Options = {}): EngineConfig {
  return {
    type: "HighThroughputEngine",
    max_workers_per_node: 1,
    ...engine,
    job_status_kwargs: { strategy_period: 0.2, ...jobStatus },
    provider: { type: "LocalProvider", ...provider },
  };
}

/** {@link localBlocks} that hold no task beyond one per worker: a task waits for a free worker, not in a busy block. */
export function unprefetchedBlocks(
  engine: Options = {},
  provider: Options = {},
  jobStatus: Options = {},
): EngineConfig {
  return localBlocks({ prefetch_capacity: 0, ...engine }, provider, jobStatus);
}

/** The sentence HighThroughputEngine refuses `config` with, or "no error". */
export function configError(config: Options): string {
  try {
    HighThroughputEngine.parse(config);
  } catch (err) {
    return (err as Error).message;
  }
  return "no error";
}

/** Writes "<pid> <ppid>" to `marker` the first time it runs, then never finishes; later runs return their pids. */
export const HANG_FIRST_TIME = `async (marker) => {
  const fs = process.getBuiltinModule("node:fs");
  if (!fs.existsSync(marker)) {
    fs.writeFileSync(marker, process.pid + " " + process.ppid);
    await new Promise(() => {});
  }
  return { pid: process.pid, ppid: process.ppid };
}`;

/** Once {@link HANG_FIRST_TIME} wrote `marker`: its worker's pid and its block manager's. */
export async function markerPids(marker: string): Promise<{ pid: number; ppid: number }> {
  await expect.poll(() => readOr(marker), { timeout: 20_000 }).toMatch(/^\d+ \d+$/);
  const [pid, ppid] = readFileSync(marker, "utf8").split(" ").map(Number);
  return { pid, ppid };
}
