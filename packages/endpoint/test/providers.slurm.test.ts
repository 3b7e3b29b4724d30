/**
 * The HighThroughputEngine on a real single-node Slurm: blocks are sbatch
 * jobs watched with squeue/scontrol and cancelled with scancel, and a job
 * that reaches its walltime, a job cancelled outside Conduit and a job whose
 * worker_init fails each fail the task with their named cause. A task cut
 * by a walltime runs once more (in a new block) before it fails naming the
 * walltime: the walltime blocks start first and run beside the other tests
 * (Slurm counts whole minutes: two blocks take 2–3 min).
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EngineResult } from "../src/engine-task.js";
import type { EngineConfig } from "../src/engines/engine-types.js";
import { EngineHarness } from "./engines.harness.js";
import { readmeHpcEngine } from "./providers.recorded.helpers.js";
import { type SlurmCluster, startSlurm } from "./slurm.helpers.js";

/** Writes the job id to `marker`, then runs until its block ends. */
const MARK_AND_HANG = `async (marker) => {
  process.getBuiltinModule("node:fs").writeFileSync(marker, process.env.SLURM_JOB_ID ?? "none");
  await new Promise(() => setInterval(() => {}, 1000));
}`;

/** Adds the job id as a line of `marker`, then runs until its block ends. */
const APPEND_AND_HANG = `async (marker) => {
  process.getBuiltinModule("node:fs").appendFileSync(marker, (process.env.SLURM_JOB_ID ?? "none") + "\\n");
  await new Promise(() => setInterval(() => {}, 1000));
}`;

let slurm: SlurmCluster;
let walltime: EngineHarness;
let walltimeResult: Promise<EngineResult>;
const harnesses: EngineHarness[] = [];

function slurmEngine(provider: Record<string, unknown>, engine: Record<string, unknown> = {}): EngineConfig {
  return {
    type: "HighThroughputEngine",
    max_workers_per_node: 1,
    prefetch_capacity: 0,
    ...engine,
    provider: { type: "SlurmProvider", exclusive: false, init_blocks: 0, max_blocks: 1, ...provider },
  };
}

async function engine(config: EngineConfig): Promise<EngineHarness> {
  const h = await EngineHarness.start(config, slurm.env);
  harnesses.push(h);
  return h;
}

async function waitForMarker(path: string): Promise<string> {
  await expect.poll(() => (existsSync(path) ? readFileSync(path, "utf8") : ""), { timeout: 30_000 }).toMatch(/^\d+$/);
  return readFileSync(path, "utf8");
}

beforeAll(async () => {
  slurm = await startSlurm();
  walltime = await engine(slurmEngine({ walltime: "00:01:00" }));
  walltimeResult = walltime.submit(APPEND_AND_HANG, [join(walltime.runDir, "walltime.marker")]);
});

afterAll(async () => {
  for (const h of harnesses) await h.close();
  await slurm?.down();
});

describe("SlurmProvider on a real Slurm", () => {
  it("runs tasks in sbatch jobs (srun inside: SrunLauncher), watches them with squeue, cancels them with scancel", async () => {
    const h = await engine(
      slurmEngine(
        { init_blocks: 1, worker_init: "export FROM_WORKER_INIT=yes", launcher: { type: "SrunLauncher" } },
        { max_workers_per_node: 2 },
      ),
    );
    const seen = (await Promise.all(
      [1, 2, 3].map(() => h.run("() => [process.env.SLURM_JOB_ID, process.env.FROM_WORKER_INIT]")),
    )) as string[][];
    const jobId = seen[0][0];
    expect(jobId).toMatch(/^\d+$/);
    expect(seen).toEqual([
      [jobId, "yes"],
      [jobId, "yes"],
      [jobId, "yes"],
    ]);
    expect(await slurm.client(["squeue", "--noheader", "--format=%i %t", `--jobs=${jobId}`])).toBe(`${jobId} R\n`);
    const scripts = readdirSync(join(h.runDir, "submit_scripts"));
    expect(scripts).toEqual(expect.arrayContaining([expect.stringMatching(/^block-0\.\d+\.submit$/)]));
    const script = readFileSync(
      join(h.runDir, "submit_scripts", scripts.find((f) => f.endsWith(".submit")) as string),
      "utf8",
    );
    expect(script).toContain("#SBATCH --time=10\n");
    expect(script).toContain("srun --ntasks 1 -l  bash $path_cmd/cmd_$SLURM_JOB_NAME.sh");
    await h.engine.shutdown();
    // The job is gone either way: scancel'd, or its block manager left first when the interchange closed.
    expect(await slurm.client(["scontrol", "show", "job", "-o", jobId])).toMatch(/JobState=(CANCELLED|COMPLETED) /);
    expect(h.logs.join("\n")).toContain("Starting block 0 with SlurmProvider.");
  });

  it("runs a task with the README's Slurm template", async () => {
    const h = await engine(
      readmeHpcEngine("SlurmProvider", { worker_init: "export FROM_README=1", workers_per_node: 1 }),
    );
    expect(await h.run("() => [process.env.FROM_README, process.env.SLURM_JOB_PARTITION]")).toEqual(["1", "debug"]);
    const script = readdirSync(join(h.runDir, "submit_scripts")).find((f) => f.endsWith(".submit")) as string;
    expect(readFileSync(join(h.runDir, "submit_scripts", script), "utf8")).toContain("#SBATCH --partition=debug\n");
    await h.engine.shutdown();
  });

  it("fails the running task with BlockCancelled when the job is cancelled outside Conduit (scancel)", async () => {
    const h = await engine(slurmEngine({}));
    const marker = join(h.runDir, "cancel.marker");
    const result = h.submit(MARK_AND_HANG, [marker]);
    const jobId = await waitForMarker(marker);
    await slurm.client(["scancel", jobId]);
    const failed = await result;
    expect(failed).toMatchObject({ ok: false, error: { code: "BLOCK_CANCELLED", name: "BlockCancelled" } });
    if (!failed.ok) {
      expect(failed.error.message).toMatch(
        new RegExp(
          `^Block 0 \\(block manager pid \\d+ on \\S+, job ${jobId}\\) was lost: its job was cancelled outside Conduit \\(by its owner, an administrator or the scheduler\\), while running task \\S+; it was not re-run`,
        ),
      );
    }
  });

  it("fails waiting tasks with the job's stdout and stderr tails and submit script when worker_init fails", async () => {
    const h = await engine(
      slurmEngine({ worker_init: "echo loading the site modules\necho 'module: command not found' >&2\nexit 7" }),
    );
    const failed = await h.submit("() => 1");
    expect(failed).toMatchObject({ ok: false, error: { code: "BLOCK_START_FAILED", name: "BlockStartError" } });
    if (failed.ok) return;
    expect(failed.error.message).toMatch(
      /^Blocks failed to start 3 times in a row \(the last, block 2: job \d+ exited with code 7 before its block manager registered\); fix worker_init or the provider settings in the endpoint config\. Its submit script: \S+\/submit_scripts\/block-2\.\d+\.submit\.\nLast lines of its stdout \(\S+\.stdout\):\nloading the site modules\nLast lines of its stderr \(\S+\.stderr\):\nmodule: command not found$/,
    );
  });

  it("runs a task cut by its job's walltime once more, then fails it with BlockWalltime naming the walltime", async () => {
    const failed = await walltimeResult;
    expect(failed).toMatchObject({ ok: false, error: { code: "BLOCK_WALLTIME", name: "BlockWalltime" } });
    if (failed.ok) return;
    // max_retries_on_system_failure is 0: the second run did not use a retry.
    const jobIds = readFileSync(join(walltime.runDir, "walltime.marker"), "utf8").trim().split("\n");
    expect(jobIds).toHaveLength(2);
    expect(jobIds[0]).not.toBe(jobIds[1]);
    expect(failed.error.message).toMatch(
      new RegExp(
        `^Block 1 \\(block manager pid \\d+ on \\S+, job ${jobIds[1]}\\) was lost: its job reached its walltime \\(00:01:00\\), while running task \\S+; the task was cut by a block's walltime 2 times and is not re-run again \\(raise the provider's walltime, or split the task into shorter ones\\)\\.$`,
      ),
    );
    for (const jobId of jobIds) {
      expect(await slurm.client(["scontrol", "show", "job", "-o", jobId])).toMatch(/JobState=TIMEOUT/);
    }
  }, 300_000);
});
