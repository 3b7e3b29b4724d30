/**
 * SlurmProvider against Slurm 22.05's recorded answers (taken from the
 * single-node cluster of test/infra/slurm-up.sh), through the command
 * runner: the job script, the job id, the state tables, exit codes and
 * signals, OUT_OF_MEMORY, and submit errors that carry what sbatch said.
 */
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { SchedulerCommandError } from "../src/providers/command-runner.js";
import { describeJobEnd } from "../src/providers/job-output.js";
import { createProvider } from "../src/providers/registry.js";
import { SLURM_SQUEUE_STATES } from "../src/providers/slurm-provider.js";
import { RecordedScheduler, startRecorded } from "./providers.recorded.helpers.js";

let cleanup: (() => void) | undefined;
afterEach(() => {
  cleanup?.();
  cleanup = undefined;
});

const SCONTROL_TAIL =
  "Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 RunTime=00:00:01 TimeLimit=00:01:00 Partition=debug NodeList=localhost";

function scontrol(jobId: string, state: string, reason: string, exit: string): string {
  return `JobId=${jobId} JobName=block-0 UserId=root(0) GroupId=root(0) Priority=4294901758 Account=(null) QOS=(null) JobState=${state} Reason=${reason} ExitCode=${exit} ${SCONTROL_TAIL}\n`;
}

async function slurm(options: Record<string, unknown> = {}) {
  const scheduler = new RecordedScheduler();
  const provider = createProvider({ type: "SlurmProvider", ...options });
  const started = await startRecorded(provider, scheduler);
  cleanup = started.cleanup;
  return { scheduler, provider, runDir: started.runDir };
}

describe("SlurmProvider (recorded Slurm answers)", () => {
  it("writes the job script with the admin's fields and submits it with sbatch", async () => {
    const { scheduler, provider, runDir } = await slurm({
      partition: "debug",
      account: "proj1",
      qos: "normal",
      constraint: "haswell",
      reservation: "conduit",
      walltime: "01:30:00",
      nodes_per_block: 2,
      mem_per_node: 4,
      cores_per_node: 8,
      scheduler_options: "#SBATCH --gpus-per-node=1",
      worker_init: "module load node",
      launcher: { type: "SrunLauncher", overrides: "--cpu-bind=none" },
    });
    scheduler.answer("sbatch", "Submitted batch job 41\n");
    expect(await provider.submit("node manager.js --port 1", "block-0")).toBe("41");
    const [argv] = scheduler.callsOf("sbatch");
    expect(argv[1]).toMatch(new RegExp(`^${runDir}/submit_scripts/block-0\\.\\d+\\.submit$`));
    const script = readFileSync(argv[1], "utf8");
    const stem = argv[1].replace(/\.submit$/, "");
    expect(script.split("\n").filter((line) => line.startsWith("#SBATCH"))).toEqual([
      `#SBATCH --job-name=${stem.split("/").pop()}`,
      `#SBATCH --output=${stem}.stdout`,
      `#SBATCH --error=${stem}.stderr`,
      "#SBATCH --nodes=2",
      "#SBATCH --time=90",
      "#SBATCH --ntasks-per-node=1",
      "#SBATCH --gpus-per-node=1",
      "#SBATCH --exclusive",
      "#SBATCH --partition=debug",
      "#SBATCH --account=proj1",
      "#SBATCH --qos=normal",
      "#SBATCH --constraint=haswell",
      "#SBATCH --reservation=conduit",
      "#SBATCH --mem=4g",
      "#SBATCH --cpus-per-task=8",
    ]);
    expect(script).toContain("module load node\nconduit_worker_init_status=$?");
    expect(script).toContain("export PARSL_MEMORY_GB=4\nexport PARSL_CORES=8\n");
    expect(script).toContain("srun --ntasks 2 -l --cpu-bind=none bash $path_cmd/cmd_$SLURM_JOB_NAME.sh");
    expect(script).toContain("node manager.js --port 1\nSLURM_EOF");
  });

  it("maps squeue states through the table and reads an ended job's exit code from scontrol", async () => {
    const { scheduler, provider } = await slurm({ exclusive: false, walltime: "00:01:00" });
    for (const id of ["1", "2", "3", "4"]) scheduler.answer("sbatch", `Submitted batch job ${id}\n`);
    for (const id of ["1", "2", "3", "4"]) await provider.submit("true", `block-${id}`);
    scheduler
      .answer("squeue", "1|PD|Resources\n2|R|None\n3|F|NonZeroExitCode\n4|TO|TimeLimit\n")
      .answer("scontrol", scontrol("3", "FAILED", "NonZeroExitCode", "3:0"))
      .answer("scontrol", scontrol("4", "TIMEOUT", "TimeLimit", "0:15"));
    const statuses = await provider.status(["1", "2", "3", "4", "99"]);
    expect(scheduler.callsOf("squeue")[0]).toEqual([
      "squeue",
      "--noheader",
      "--states=all",
      "--format=%i|%t|%r",
      "--jobs=1,2,3,4",
    ]);
    expect(statuses.get("1")).toMatchObject({ state: "pending", message: "PD (Resources)" });
    expect(statuses.get("2")).toMatchObject({ state: "running" });
    expect(statuses.get("3")).toMatchObject({ state: "failed", exitCode: 3 });
    expect(statuses.get("4")).toMatchObject({ state: "timeout", signal: "SIGTERM", walltime: "00:01:00" });
    expect(statuses.get("99")?.state).toBe("missing");
    expect(describeJobEnd(statuses.get("4") as never)).toBe("reached its walltime (00:01:00)");
    expect(statuses.get("3")?.scriptPath).toMatch(/block-3\.\d+\.submit$/);

    // Ended jobs are not asked about again; a job Slurm forgot is missing.
    scheduler.answer("squeue", "", 1, "slurm_load_jobs error: Invalid job id specified\n");
    const again = await provider.status(["1", "3", "4"]);
    expect(again.get("1")?.state).toBe("missing");
    expect(again.get("3")?.exitCode).toBe(3);
    expect(scheduler.callsOf("squeue")[1]).toContain("--jobs=1");
    expect(scheduler.callsOf("scontrol")).toHaveLength(2);
  });

  it("names OUT_OF_MEMORY, a job completing at its time limit, and an outside cancel", async () => {
    const { scheduler, provider } = await slurm({ exclusive: false });
    for (const id of ["7", "8", "9"]) scheduler.answer("sbatch", `Submitted batch job ${id}\n`);
    for (const id of ["7", "8", "9"]) await provider.submit("true", `block-${id}`);
    scheduler
      .answer("squeue", "7|OOM|OutOfMemory\n8|CG|TimeLimit\n9|CA|None\n")
      .answer("scontrol", scontrol("7", "OUT_OF_MEMORY", "OutOfMemory", "0:125"))
      .answer("scontrol", scontrol("8", "COMPLETING", "TimeLimit", "0:15"))
      .answer("scontrol", scontrol("9", "CANCELLED", "None", "0:15"));
    const statuses = await provider.status(["7", "8", "9"]);
    expect(statuses.get("7")).toMatchObject({ state: "failed", outOfMemory: true, message: "OUT_OF_MEMORY" });
    expect(describeJobEnd(statuses.get("7") as never)).toMatch(/^was killed by the scheduler for exceeding its memory/);
    expect(statuses.get("8")).toMatchObject({ state: "timeout", walltime: "00:10:00" });
    expect(statuses.get("9")).toMatchObject({ state: "cancelled", signal: "SIGTERM" });
    expect(describeJobEnd(statuses.get("9") as never)).toMatch(/^was cancelled outside Conduit/);
  });

  it("fails a submit with the command, its exit code, stdout and stderr", async () => {
    const { scheduler, provider } = await slurm({ partition: "nope" });
    scheduler.answer(
      "sbatch",
      "",
      1,
      "sbatch: error: invalid partition specified: nope\nsbatch: error: Batch job submission failed: Invalid partition name specified\n",
    );
    const error = await provider.submit("true", "block-0").catch((err: unknown) => err);
    expect(error).toBeInstanceOf(SchedulerCommandError);
    const failure = error as SchedulerCommandError;
    expect(failure).toMatchObject({ code: "SCHEDULER_COMMAND_FAILED", exitCode: 1, stdout: "" });
    expect(failure.command).toMatch(/^sbatch \S+\/submit_scripts\/block-0\.\d+\.submit$/);
    expect(failure.stderr).toContain("Invalid partition name specified");
    expect(failure.message).toMatch(
      /^`sbatch .*` exited with code 1; stdout: \(empty\); stderr: ".*Invalid partition name specified"$/,
    );

    scheduler.answer("sbatch", "something else\n");
    await expect(provider.submit("true", "block-1")).rejects.toThrow(/printed no job id; stdout: "something else"/);
  });

  it("cancels with scancel and waits until Slurm reports the jobs ended", async () => {
    const { scheduler, provider } = await slurm();
    scheduler.answer("sbatch", "Submitted batch job 12\n");
    await provider.submit("true", "block-0");
    scheduler
      .answer("scancel", "")
      .answer("squeue", "12|R|None\n")
      .answer("squeue", "12|CA|None\n")
      .answer("scontrol", scontrol("12", "CANCELLED", "None", "0:15"));
    await provider.cancel(["12"]);
    expect(scheduler.callsOf("scancel")).toEqual([["scancel", "12"]]);
    expect((await provider.status(["12"])).get("12")?.state).toBe("cancelled");
    expect(scheduler.callsOf("squeue")).toHaveLength(2);
  });

  it("has a state for every squeue code of Parsl's table", () => {
    for (const code of ["PD", "R", "CA", "CF", "CG", "CD", "F", "TO", "NF", "RV", "SE"]) {
      expect(SLURM_SQUEUE_STATES[code], code).toBeDefined();
    }
  });

  it("refuses unknown and ill-typed fields, and a walltime under a minute, in one sentence", () => {
    expect(() => createProvider({ type: "SlurmProvider", partiton: "debug" })).toThrow(
      /^`engine\.provider\.partiton` is not a valid SlurmProvider option \(did you mean `partition`\?\); valid SlurmProvider options are: .*partition/,
    );
    expect(() => createProvider({ type: "SlurmProvider", exclusive: "yes" })).toThrow(
      'engine.provider.exclusive must be true or false (got "yes").',
    );
    expect(() => createProvider({ type: "SlurmProvider", walltime: "1h" })).toThrow(
      'engine.provider.walltime must be a walltime "HH:MM:SS", e.g. "01:30:00" (got "1h").',
    );
    expect(() => createProvider({ type: "SlurmProvider", walltime: "00:00:30" })).toThrow(
      /walltime "00:00:30" is under one minute, and Slurm counts walltimes in whole minutes/,
    );
    expect(() => createProvider({ type: "SlurmProvider", launcher: { type: "SrunLauncher", override: "x" } })).toThrow(
      /`engine\.provider\.launcher\.override` is not a valid SrunLauncher option \(did you mean `overrides`\?\)/,
    );
    expect(() => createProvider({ type: "SlurmProvider", launcher: { type: "Srun" } })).toThrow(
      /^'Srun' is not a valid launcher\. Valid options are: AprunLauncher, JsrunLauncher, MpiExecLauncher/,
    );
  });
});
