/**
 * SlurmProvider: each block is a batch job. `sbatch` submits it, `squeue
 * --states=all` reports every job Slurm still remembers (pending, running
 * and recently ended ones, so an ended job's cause is not lost, unlike
 * Parsl's squeue-only path that calls every vanished job completed), `scontrol
 * show job` gives an ended job's exit code, `scancel` cancels. No slurmdbd
 * (sacct) is needed.
 */
import { booleanField, doc, integerField, type Options, parseOptions, stringField } from "../option-fields.js";
import { checkBlockCounts } from "./block-options.js";
import { checkWholeMinutes, clusterFields, walltimeMinutes } from "./cluster-options.js";
import { ClusterProvider, directiveLines, type JobFiles, schedulerOptionLines } from "./cluster-provider.js";
import type { CommandRunner } from "./command-runner.js";
import { signalName } from "./job-output.js";
import { type JobState, type JobStatus, TERMINAL_JOB_STATES } from "./provider-types.js";

/** squeue's compact states (`%t`): Parsl's table, plus the codes it leaves out (marked). */
export const SLURM_SQUEUE_STATES: Readonly<Record<string, JobState>> = {
  PD: "pending",
  R: "running",
  CA: "cancelled",
  CF: "pending", // configuring
  CG: "running", // completing (see below: at a time limit it is the walltime)
  CD: "completed",
  F: "failed",
  TO: "timeout",
  NF: "failed", // node failure
  RV: "failed", // revoked
  SE: "failed", // special exit state
  // Not in Parsl's squeue table; as its sacct table maps the long names:
  OOM: "failed", // out of memory
  BF: "failed", // boot failure
  DL: "timeout", // deadline
  PR: "timeout", // preempted
  S: "held", // suspended
  RQ: "pending", // requeued
};

/** The long states (`scontrol`, `sacct`): Parsl's sacct table. */
export const SLURM_LONG_STATES: Readonly<Record<string, JobState>> = {
  PENDING: "pending",
  REQUEUED: "pending",
  RUNNING: "running",
  CANCELLED: "cancelled",
  COMPLETED: "completed",
  FAILED: "failed",
  NODE_FAIL: "failed",
  BOOT_FAIL: "failed",
  REVOKED: "failed",
  OUT_OF_MEMORY: "failed",
  TIMEOUT: "timeout",
  DEADLINE: "timeout",
  PREEMPTED: "timeout",
  SUSPENDED: "held",
};

export const SLURM_PROVIDER_FIELDS = {
  ...clusterFields({ walltime: "00:10:00", cmdTimeout: 10 }),
  partition: doc("Partition to run blocks in (`--partition`); absent: Slurm's default.", stringField(undefined)),
  account: doc("Account charged for the blocks (`--account`); absent: the user's default.", stringField(undefined)),
  qos: doc("Quality of service (`--qos`).", stringField(undefined)),
  constraint: doc("Node features required (`--constraint`), e.g. `gpu`.", stringField(undefined)),
  reservation: doc("Reservation to run in (`--reservation`).", stringField(undefined)),
  exclusive: doc("Request whole nodes, shared with no other job (`--exclusive`).", booleanField(true)),
  cores_per_node: doc(
    "Cores per node (`--cpus-per-task`; exported to workers as `PARSL_CORES`); absent: Slurm's default.",
    integerField({ min: 1, fallback: undefined }),
  ),
  mem_per_node: doc(
    "Memory per node in GB (`--mem=<n>g`; exported as `PARSL_MEMORY_GB`); absent: Slurm's default.",
    integerField({ min: 1, fallback: undefined }),
  ),
};

export type SlurmProviderOptions = Options<typeof SLURM_PROVIDER_FIELDS>;

export class SlurmProvider extends ClusterProvider<SlurmProviderOptions> {
  readonly type = "SlurmProvider";

  static parse(raw: unknown, path: string, source?: string, runCommand?: CommandRunner): SlurmProvider {
    const options = parseOptions(raw, path, "SlurmProvider", SLURM_PROVIDER_FIELDS, source);
    checkBlockCounts(options, path);
    checkWholeMinutes(options.walltime, path, "Slurm");
    return new SlurmProvider(options, runCommand);
  }

  protected directives(job: JobFiles): string[] {
    const o = this.options;
    return [
      ...directiveLines("#SBATCH", [
        `--job-name=${job.jobName}`,
        `--output=${job.stdoutPath}`,
        `--error=${job.stderrPath}`,
        `--nodes=${o.nodes_per_block}`,
        `--time=${walltimeMinutes(o.walltime)}`,
        "--ntasks-per-node=1",
      ]),
      ...schedulerOptionLines(o.scheduler_options),
      ...directiveLines("#SBATCH", [
        o.exclusive && "--exclusive",
        o.partition !== undefined && `--partition=${o.partition}`,
        o.account !== undefined && `--account=${o.account}`,
        o.qos !== undefined && `--qos=${o.qos}`,
        o.constraint !== undefined && `--constraint=${o.constraint}`,
        o.reservation !== undefined && `--reservation=${o.reservation}`,
        o.mem_per_node !== undefined && `--mem=${o.mem_per_node}g`,
        o.cores_per_node !== undefined && `--cpus-per-task=${o.cores_per_node}`,
      ]),
    ];
  }

  protected override exports(): string[] {
    const o = this.options;
    return [
      ...(o.mem_per_node === undefined ? [] : [`export PARSL_MEMORY_GB=${o.mem_per_node}`]),
      ...(o.cores_per_node === undefined ? [] : [`export PARSL_CORES=${o.cores_per_node}`]),
    ];
  }

  protected submitCommand(scriptPath: string): string[] {
    return ["sbatch", scriptPath];
  }

  protected parseJobId(stdout: string): string | undefined {
    return /^Submitted batch job (\S+)/m.exec(stdout)?.[1];
  }

  protected cancelCommand(jobIds: readonly string[]): string[] {
    return ["scancel", ...jobIds];
  }

  protected async queryStates(jobIds: readonly string[]): Promise<Map<string, JobStatus>> {
    // All ids unknown to Slurm: exit 1 "Invalid job id specified"; that means every one is missing.
    const result = await this.query(
      ["squeue", "--noheader", "--states=all", "--format=%i|%t|%r", `--jobs=${jobIds.join(",")}`],
      (r) => /Invalid job id/i.test(r.stderr),
    );
    const statuses = new Map<string, JobStatus>();
    for (const line of result.stdout.split("\n")) {
      const [jobId, code, reason] = line.trim().split("|");
      if (!jobId || code === undefined || !jobIds.includes(jobId)) continue;
      statuses.set(jobId, squeueStatus(code, reason ?? ""));
    }
    for (const [jobId, status] of statuses) {
      if (TERMINAL_JOB_STATES.has(status.state)) Object.assign(status, await this.endOfJob(jobId));
    }
    return statuses;
  }

  /** An ended job's exit code or signal (`scontrol show job`: `ExitCode=3:0`, `ExitCode=0:15`). */
  private async endOfJob(jobId: string): Promise<Partial<JobStatus>> {
    const result = await this.run(["scontrol", "show", "job", "-o", jobId]);
    if (result.exitCode !== 0) return {};
    return parseScontrolEnd(result.stdout);
  }
}

/** One squeue line's state: a job completing at its time limit has reached its walltime. */
export function squeueStatus(code: string, reason: string): JobStatus {
  if (code === "CG" && reason === "TimeLimit") return { state: "timeout", message: "TIMEOUT" };
  const state = SLURM_SQUEUE_STATES[code] ?? "unknown";
  const status: JobStatus = { state, message: reason && reason !== "None" ? `${code} (${reason})` : code };
  if (code === "OOM") status.outOfMemory = true;
  return status;
}

/** The exit code, signal and long state of one `scontrol show job -o` line. */
export function parseScontrolEnd(text: string): Partial<JobStatus> {
  const end: Partial<JobStatus> = {};
  const exit = /\bExitCode=(\d+):(\d+)/.exec(text);
  if (exit) {
    const [code, signal] = [Number(exit[1]), Number(exit[2])];
    if (signal > 0) end.signal = signalName(signal);
    else end.exitCode = code;
  }
  const state = /\bJobState=(\S+)/.exec(text)?.[1];
  if (state !== undefined && Object.hasOwn(SLURM_LONG_STATES, state)) {
    end.state = SLURM_LONG_STATES[state];
    end.message = state;
    if (state === "OUT_OF_MEMORY") end.outOfMemory = true;
  }
  return end;
}
