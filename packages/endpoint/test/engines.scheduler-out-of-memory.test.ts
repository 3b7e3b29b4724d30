/**
 * Slurm's OUT_OF_MEMORY, end to end through the engine: a SlurmProvider
 * whose command runner plays a scheduler from recorded Slurm 22.05 answers
 * (sbatch's job id, squeue's `OOM`, scontrol's `JobState=OUT_OF_MEMORY
 * ExitCode=0:125`) while the block itself runs for real on this host. The
 * test kills the block as the kernel would, and the running task fails as
 * WorkerOutOfMemory naming the scheduler's cause (never the kernel's OOM
 * killer on this shared machine).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { HighThroughputEngine } from "../src/engines/high-throughput-engine.js";
import type { CommandRunner } from "../src/providers/command-runner.js";
import { SlurmProvider } from "../src/providers/slurm-provider.js";
import { EngineHarness, killQuietly } from "./engines.harness.js";

/** One job at a time, run by bash on this host; its state is what the test says Slurm would answer. */
class ReplayedSlurm {
  job: ChildProcess | undefined;
  oomKilled = false;

  readonly run: CommandRunner = async (argv) => {
    const ok = (stdout: string) => ({ exitCode: 0, stdout, stderr: "" });
    switch (argv[0]) {
      case "sbatch": {
        const script = readFileSync(argv[1], "utf8");
        const out = openSync(/^#SBATCH --output=(.+)$/m.exec(script)?.[1] as string, "a");
        const err = openSync(/^#SBATCH --error=(.+)$/m.exec(script)?.[1] as string, "a");
        this.job = spawn("bash", [argv[1]], { detached: true, stdio: ["ignore", out, err] });
        return ok("Submitted batch job 900\n");
      }
      case "squeue":
        return ok(this.oomKilled ? "900|OOM|OutOfMemory\n" : "900|R|None\n");
      case "scontrol":
        return ok(
          "JobId=900 JobName=block-0 UserId=root(0) GroupId=root(0) JobState=OUT_OF_MEMORY Reason=OutOfMemory Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 ExitCode=0:125 RunTime=00:00:04 TimeLimit=00:10:00\n",
        );
      case "scancel":
        this.kill();
        return ok("");
      default:
        throw new Error(`no recorded answer for ${argv.join(" ")}`);
    }
  };

  kill(): void {
    if (this.job?.pid !== undefined) killQuietly(-this.job.pid);
  }
}

let h: EngineHarness | undefined;
let slurm: ReplayedSlurm | undefined;
afterEach(async () => {
  await h?.close();
  slurm?.kill();
  h = undefined;
});

describe("a block Slurm ends with OUT_OF_MEMORY", () => {
  it("fails its running task as WorkerOutOfMemory, naming the scheduler's cause, and does not re-run it", async () => {
    slurm = new ReplayedSlurm();
    const provider = SlurmProvider.parse({ exclusive: false }, "engine.provider", undefined, slurm.run);
    const parsed = HighThroughputEngine.parse({ max_workers_per_node: 1, max_retries_on_system_failure: 2 });
    h = await EngineHarness.startEngine(new HighThroughputEngine({ ...parsed.options, provider }));
    const marker = join(h.runDir, "running");
    const result = h.submit(
      `async (marker) => {
        process.getBuiltinModule("node:fs").writeFileSync(marker, "");
        await new Promise(() => setInterval(() => {}, 1000));
      }`,
      [marker],
    );
    await expect.poll(() => existsSync(marker), { timeout: 20_000 }).toBe(true);
    slurm.oomKilled = true;
    slurm.kill();
    const failed = await result;
    expect(failed).toMatchObject({ ok: false, error: { code: "WORKER_OUT_OF_MEMORY", name: "WorkerOutOfMemory" } });
    if (!failed.ok) {
      expect(failed.error.message).toMatch(
        /^Block 0 \(block manager pid \d+ on \S+, job 900\) was lost: its job was killed by the scheduler for exceeding its memory \(OUT_OF_MEMORY\); raise mem_per_node or lower max_workers_per_node, while running task \S+; it was not re-run\.$/,
      );
    }
    h.expectOneResultEach();
  });
});
