/**
 * LSFProvider: each block is an LSF job. `bsub` submits it (`bsub < script`
 * with bsub_redirection), `bjobs -a -o` reports its state, exit code and
 * exit reason (TERM_RUNLIMIT: the walltime; TERM_MEMLIMIT: memory;
 * TERM_OWNER/TERM_ADMIN: cancelled), `bkill` cancels.
 */
import { ConfigError } from "../errors.js";
import { booleanField, doc, integerField, type Options, parseOptions, stringField } from "../option-fields.js";
import { shellQuote } from "../shell-quote.js";
import { checkBlockCounts } from "./block-options.js";
import { checkWholeMinutes, clusterFields, walltimeMinutes } from "./cluster-options.js";
import { ClusterProvider, directiveLines, type JobFiles, schedulerOptionLines } from "./cluster-provider.js";
import type { CommandRunner } from "./command-runner.js";
import type { JobState, JobStatus } from "./provider-types.js";

/**
 * bjobs' STAT: Parsl's table, except the suspended states, which Parsl calls
 * cancelled: a suspended job resumes, so here it is held.
 */
export const LSF_STATES: Readonly<Record<string, JobState>> = {
  PEND: "pending",
  RUN: "running",
  DONE: "completed",
  EXIT: "failed",
  PSUSP: "held",
  USUSP: "held",
  SSUSP: "held",
};

export const LSF_PROVIDER_FIELDS = {
  ...clusterFields({ walltime: "00:10:00", cmdTimeout: 120 }),
  project: doc("Project charged for the blocks (`#BSUB -P`).", stringField(undefined)),
  queue: doc("Queue to submit blocks to (`#BSUB -q`).", stringField(undefined)),
  request_by_nodes: doc(
    "Request `nodes_per_block` whole nodes (`-nnodes`); false: request `cores_per_block` cores, `cores_per_node` per host.",
    booleanField(true),
  ),
  cores_per_block: doc(
    "Cores per block (`#BSUB -n`) when request_by_nodes is false.",
    integerField({ min: 1, fallback: undefined }),
  ),
  cores_per_node: doc(
    "Cores per host (`span[ptile=<n>]`) when request_by_nodes is false.",
    integerField({ min: 1, fallback: undefined }),
  ),
  bsub_redirection: doc(
    "Submit with `bsub < script` (some sites need it) instead of `bsub script`.",
    booleanField(false),
  ),
};

export type LSFProviderOptions = Options<typeof LSF_PROVIDER_FIELDS>;

export class LSFProvider extends ClusterProvider<LSFProviderOptions> {
  readonly type = "LSFProvider";

  static parse(raw: unknown, path: string, source?: string, runCommand?: CommandRunner): LSFProvider {
    const options = parseOptions(raw, path, "LSFProvider", LSF_PROVIDER_FIELDS, source);
    checkBlockCounts(options, path);
    checkWholeMinutes(options.walltime, path, "LSF");
    if (!options.request_by_nodes && (options.cores_per_block === undefined || options.cores_per_node === undefined)) {
      throw new ConfigError(
        `${path}.request_by_nodes is false but ${path}.cores_per_block or ${path}.cores_per_node is missing; set both, or remove request_by_nodes.`,
      );
    }
    // As Parsl: requesting cores, the block spans ceil(cores_per_block / cores_per_node) nodes.
    const nodes = options.request_by_nodes
      ? options.nodes_per_block
      : Math.ceil((options.cores_per_block as number) / (options.cores_per_node as number));
    return new LSFProvider({ ...options, nodes_per_block: nodes }, runCommand);
  }

  protected directives(job: JobFiles): string[] {
    const o = this.options;
    return [
      ...directiveLines("#BSUB", [
        `-W ${walltimeMinutes(o.walltime)}`,
        `-J ${job.jobName}`,
        `-o ${job.stdoutPath}`,
        `-e ${job.stderrPath}`,
      ]),
      ...schedulerOptionLines(o.scheduler_options),
      ...directiveLines("#BSUB", [
        o.project !== undefined && `-P ${o.project}`,
        o.queue !== undefined && `-q ${o.queue}`,
        o.request_by_nodes && `-nnodes ${o.nodes_per_block}`,
        !o.request_by_nodes && `-n ${o.cores_per_block}`,
        !o.request_by_nodes && `-R "span[ptile=${o.cores_per_node}]"`,
      ]),
    ];
  }

  protected submitCommand(scriptPath: string): string[] {
    return this.options.bsub_redirection ? ["/bin/sh", "-c", `bsub < ${shellQuote(scriptPath)}`] : ["bsub", scriptPath];
  }

  protected parseJobId(stdout: string): string | undefined {
    return /^Job <(\d+)> is submitted to/im.exec(stdout)?.[1];
  }

  protected cancelCommand(jobIds: readonly string[]): string[] {
    return ["bkill", ...jobIds];
  }

  protected async queryStates(jobIds: readonly string[]): Promise<Map<string, JobStatus>> {
    // An id LSF forgot: "Job <N> is not found" on stderr and a non-zero exit; the others are still printed.
    const result = await this.query(
      ["bjobs", "-a", "-noheader", "-o", "jobid stat exit_code exit_reason delimiter='|'", ...jobIds],
      (r) => /is not found/.test(r.stderr),
    );
    const statuses = new Map<string, JobStatus>();
    for (const line of result.stdout.split("\n")) {
      const [jobId, stat, exitCode, reason] = line.trim().split("|");
      if (!jobId || stat === undefined || !jobIds.includes(jobId)) continue;
      statuses.set(jobId, bjobsStatus(stat, exitCode ?? "-", reason ?? "-"));
    }
    return statuses;
  }
}

/** One bjobs line: STAT through the table, then the exit reason's cause. */
export function bjobsStatus(stat: string, exitCode: string, reason: string): JobStatus {
  const status: JobStatus = { state: LSF_STATES[stat] ?? "unknown", message: reason !== "-" ? reason : stat };
  if (status.state !== "failed") return status;
  if (/^TERM_RUNLIMIT\b/.test(reason)) status.state = "timeout";
  else if (/^TERM_(OWNER|ADMIN|FORCE_OWNER|FORCE_ADMIN)\b/.test(reason)) status.state = "cancelled";
  else if (/^TERM_(MEMLIMIT|SWAP)\b/.test(reason)) status.outOfMemory = true;
  else if (/^\d+$/.test(exitCode)) status.exitCode = Number(exitCode);
  return status;
}
