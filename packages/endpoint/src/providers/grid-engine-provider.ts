/**
 * GridEngineProvider: each block is a (Sun/Son of/Univa) Grid Engine job.
 * `qsub -terse` submits it, `qstat` reports the jobs it still holds, `qdel`
 * cancels. Grid Engine keeps no record of ended jobs outside its accounting
 * (`qacct`), so a job that leaves qstat is `missing`: its cause is in its
 * stdout and stderr, which the engine quotes.
 */
import { doc, type Options, parseOptions, stringField } from "../option-fields.js";
import { checkBlockCounts } from "./block-options.js";
import { clusterFields } from "./cluster-options.js";
import { ClusterProvider, directiveLines, type JobFiles, schedulerOptionLines } from "./cluster-provider.js";
import type { CommandRunner } from "./command-runner.js";
import type { JobState, JobStatus } from "./provider-types.js";

/** qstat's state column: Parsl's table. */
export const GRID_ENGINE_STATES: Readonly<Record<string, JobState>> = {
  qw: "pending",
  hqw: "pending",
  hrwq: "pending",
  r: "running",
  s: "failed", // suspended
  ts: "failed",
  t: "failed", // suspended by alarm
  eqw: "failed", // error states
  ehqw: "failed",
  ehrqw: "failed",
  d: "completed",
  dr: "completed",
  dt: "completed",
  drt: "completed",
  ds: "completed",
  drs: "completed",
};

export const GRID_ENGINE_PROVIDER_FIELDS = {
  ...clusterFields({ walltime: "00:10:00", cmdTimeout: 60 }),
  queue: doc("Queue to submit blocks to (`#$ -q`).", stringField(undefined)),
};

export type GridEngineProviderOptions = Options<typeof GRID_ENGINE_PROVIDER_FIELDS>;

export class GridEngineProvider extends ClusterProvider<GridEngineProviderOptions> {
  readonly type = "GridEngineProvider";

  static parse(raw: unknown, path: string, source?: string, runCommand?: CommandRunner): GridEngineProvider {
    const options = parseOptions(raw, path, "GridEngineProvider", GRID_ENGINE_PROVIDER_FIELDS, source);
    checkBlockCounts(options, path);
    return new GridEngineProvider(options, runCommand);
  }

  protected directives(job: JobFiles): string[] {
    const o = this.options;
    return [
      ...directiveLines("#$", [
        "-S /bin/bash",
        `-N ${job.jobName}`,
        `-o ${job.stdoutPath}`,
        `-e ${job.stderrPath}`,
        "-cwd",
        `-l h_rt=${o.walltime}`,
        o.queue !== undefined && `-q ${o.queue}`,
      ]),
      ...schedulerOptionLines(o.scheduler_options),
    ];
  }

  protected submitCommand(scriptPath: string): string[] {
    return ["qsub", "-terse", scriptPath];
  }

  protected parseJobId(stdout: string): string | undefined {
    return /^(\d+)/m.exec(stdout.trim())?.[1];
  }

  protected cancelCommand(jobIds: readonly string[]): string[] {
    return ["qdel", ...jobIds];
  }

  protected async queryStates(jobIds: readonly string[]): Promise<Map<string, JobStatus>> {
    const result = await this.query(["qstat"]);
    const statuses = new Map<string, JobStatus>();
    // job-ID prior name user state submit/start-at queue slots ja-task-ID; two header lines.
    for (const line of result.stdout.split("\n")) {
      const columns = line.trim().split(/\s+/);
      const [jobId, , , , state] = columns;
      if (!jobId || state === undefined || !jobIds.includes(jobId)) continue;
      statuses.set(jobId, { state: GRID_ENGINE_STATES[state] ?? "unknown", message: state });
    }
    return statuses;
  }
}
