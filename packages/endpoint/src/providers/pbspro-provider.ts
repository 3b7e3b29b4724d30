/**
 * PBSProProvider: each block is a PBS Pro job. `qsub` submits it, `qstat -f
 * -x -F json` reports it (finished jobs included, with their Exit_status and
 * comment), `qdel` cancels. Exit statuses follow PBS: above 256 a signal,
 * -29 the walltime, -27/-26 memory.
 */
import { doc, integerField, type Options, parseOptions, stringField } from "../option-fields.js";
import { checkBlockCounts } from "./block-options.js";
import { clusterFields } from "./cluster-options.js";
import { ClusterProvider, directiveLines, type JobFiles, schedulerOptionLines } from "./cluster-provider.js";
import type { CommandRunner } from "./command-runner.js";
import { signalName } from "./job-output.js";
import type { JobState, JobStatus } from "./provider-types.js";

/** qstat's `job_state`: Parsl's (Torque's) table, plus PBS Pro's F (finished, shown with `-x`). */
export const PBS_STATES: Readonly<Record<string, JobState>> = {
  R: "running",
  C: "completed", // completed after having run
  E: "completed", // exiting after having run
  H: "held",
  Q: "pending", // queued, eligible to run
  W: "pending", // waiting for its execution time
  S: "held", // suspended
  F: "completed", // finished (PBS Pro, qstat -x)
};

/** PBS Pro's JOB_EXEC_KILL_* exit statuses that Conduit names. */
const PBS_KILL_WALLTIME = -29;
const PBS_KILL_MEMORY = new Set([-26, -27]); // vmem, mem

export const PBSPRO_PROVIDER_FIELDS = {
  ...clusterFields({ walltime: "00:20:00", cmdTimeout: 120 }),
  account: doc("Account charged for the blocks (`qsub -A`).", stringField(undefined)),
  queue: doc("Queue to submit blocks to (`qsub -q`).", stringField(undefined)),
  cpus_per_node: doc("CPUs per node (`-l select=<nodes>:ncpus=<n>`).", integerField({ min: 1, fallback: 1 })),
  select_options: doc("Text appended to the `-l select=` request, e.g. `ngpus=4` or `mem=64gb`.", stringField("")),
};

export type PBSProProviderOptions = Options<typeof PBSPRO_PROVIDER_FIELDS>;

interface QstatJob {
  job_state?: string;
  Exit_status?: number;
  comment?: string;
}

export class PBSProProvider extends ClusterProvider<PBSProProviderOptions> {
  readonly type = "PBSProProvider";

  static parse(raw: unknown, path: string, source?: string, runCommand?: CommandRunner): PBSProProvider {
    const options = parseOptions(raw, path, "PBSProProvider", PBSPRO_PROVIDER_FIELDS, source);
    checkBlockCounts(options, path);
    return new PBSProProvider(options, runCommand);
  }

  protected directives(job: JobFiles): string[] {
    const o = this.options;
    const select =
      o.select_options === "" || o.select_options.startsWith(":") ? o.select_options : `:${o.select_options}`;
    return [
      ...directiveLines("#PBS", [
        "-S /bin/bash",
        `-N ${job.jobName}`,
        "-m n",
        `-l walltime=${o.walltime}`,
        `-l select=${o.nodes_per_block}:ncpus=${o.cpus_per_node}${select}`,
        `-o ${job.stdoutPath}`,
        `-e ${job.stderrPath}`,
      ]),
      ...schedulerOptionLines(o.scheduler_options),
    ];
  }

  protected submitCommand(scriptPath: string): string[] {
    const o = this.options;
    return [
      "qsub",
      ...(o.queue === undefined ? [] : ["-q", o.queue]),
      ...(o.account === undefined ? [] : ["-A", o.account]),
      scriptPath,
    ];
  }

  protected parseJobId(stdout: string): string | undefined {
    return stdout
      .split("\n")
      .map((line) => line.trim())
      .find((line) => line !== "");
  }

  protected cancelCommand(jobIds: readonly string[]): string[] {
    return ["qdel", ...jobIds];
  }

  protected async queryStates(jobIds: readonly string[]): Promise<Map<string, JobStatus>> {
    // An unknown id makes qstat exit non-zero ("Unknown Job Id"), yet it prints the others: read what it printed.
    const result = await this.query(["qstat", "-f", "-x", "-F", "json", ...jobIds], (r) =>
      /Unknown Job Id/i.test(r.stderr),
    );
    const statuses = new Map<string, JobStatus>();
    if (result.stdout.trim() === "") return statuses;
    const jobs = (JSON.parse(result.stdout) as { Jobs?: Record<string, QstatJob> }).Jobs ?? {};
    for (const [reported, job] of Object.entries(jobs)) {
      // qstat may print a longer id (`12.server.domain`) than qsub did (`12.server`), or the reverse.
      const jobId = jobIds.find(
        (id) => id === reported || reported.startsWith(`${id}.`) || id.startsWith(`${reported}.`),
      );
      if (jobId !== undefined) statuses.set(jobId, qstatStatus(job));
    }
    return statuses;
  }
}

/** One qstat job: its state through the table, then what its Exit_status says about how it ended. */
export function qstatStatus(job: QstatJob): JobStatus {
  const code = job.job_state ?? "";
  const status: JobStatus = { state: PBS_STATES[code] ?? "unknown", message: job.comment ?? code };
  const exit = job.Exit_status;
  if (status.state !== "completed" || exit === undefined || exit === 0) return status;
  if (exit === PBS_KILL_WALLTIME || /walltime .* exceeded limit/.test(job.comment ?? "")) status.state = "timeout";
  else {
    status.state = "failed";
    if (PBS_KILL_MEMORY.has(exit) || /\bv?mem .* exceeded limit/.test(job.comment ?? "")) status.outOfMemory = true;
    else if (exit > 256) status.signal = signalName(exit - 256);
    else status.exitCode = exit;
  }
  return status;
}
