/**
 * What every batch-scheduler provider does the same way (Parsl's
 * ClusterProvider): write a job script into `<runDir>/submit_scripts/`
 * (directives, worker_init checked, the launcher's text), submit it, poll
 * job states, cancel. A scheduler's file says only how its commands look and
 * read: its directives, submit/status/cancel argument vectors, and the table
 * that maps its states onto JobState. Every command goes through one
 * CommandRunner.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ConduitError } from "@conduit/protocol/wire";
import type { Launcher } from "../launchers/launchers.js";
import { type BlockOptions, BlockOptionsProvider, workerInitLines } from "./block-options.js";
import { type CommandResult, type CommandRunner, execCommand, SchedulerCommandError } from "./command-runner.js";
import { type JobStatus, type Provider, type ProviderContext, TERMINAL_JOB_STATES } from "./provider-types.js";

/** The options the base class reads; each provider's table has at least these. */
export interface ClusterOptions extends BlockOptions {
  readonly walltime: string;
  readonly scheduler_options: string;
  readonly cmd_timeout: number;
  readonly launcher: Launcher;
}

/** The files of one job, named after it. */
export interface JobFiles {
  /** `<block name>.<ms since epoch>`: unique, and the scheduler's job name. */
  jobName: string;
  scriptPath: string;
  stdoutPath: string;
  stderrPath: string;
}

interface ClusterJob extends JobFiles {
  /** Cancelled by this provider: a terminal state then reads `cancelled`, whatever the scheduler says. */
  cancelled: boolean;
  /** The terminal status, once seen: never asked for again. */
  final?: JobStatus;
}

/** How often the engine polls a scheduler for blocks that have not connected yet. */
const CLUSTER_POLLING_INTERVAL_MS = 2000;
/** How often cancel asks whether the cancelled jobs are gone. */
const CANCEL_POLL_MS = 200;

export abstract class ClusterProvider<O extends ClusterOptions> extends BlockOptionsProvider<O> implements Provider {
  abstract readonly type: string;
  readonly pollingIntervalMs = CLUSTER_POLLING_INTERVAL_MS;
  private readonly jobs = new Map<string, ClusterJob>();
  private context: ProviderContext | undefined;
  private scriptDir = "";

  /** @param runCommand replaces the context's runner (and the default, a child process): tests replay recorded answers. */
  constructor(
    options: O,
    private runCommand?: CommandRunner,
  ) {
    super(options);
  }

  /** The scheduler's directive lines (`#SBATCH …`), the admin's scheduler_options among them. */
  protected abstract directives(job: JobFiles): string[];
  /** Lines exported after worker_init (e.g. `export PARSL_CORES=…`). */
  protected exports(): string[] {
    return [];
  }
  protected abstract submitCommand(scriptPath: string): string[];
  /** The job id in the submit command's stdout, if it is there. */
  protected abstract parseJobId(stdout: string): string | undefined;
  /** Asks the scheduler for the states of these jobs; a job it does not answer for is `missing`. */
  protected abstract queryStates(jobIds: readonly string[]): Promise<Map<string, JobStatus>>;
  protected abstract cancelCommand(jobIds: readonly string[]): string[];

  async start(context: ProviderContext): Promise<void> {
    this.context = context;
    this.runCommand ??= context.runCommand ?? execCommand;
    this.scriptDir = join(context.runDir, "submit_scripts");
    await mkdir(this.scriptDir, { recursive: true, mode: 0o700 });
  }

  /** The job script, as written to `<runDir>/submit_scripts/<job>.submit`. */
  jobScript(command: string, job: JobFiles): string {
    return [
      "#!/bin/bash",
      ...this.directives(job),
      "",
      ...workerInitLines(this.options.worker_init),
      ...this.exports(),
      `export JOBNAME=${JSON.stringify(job.jobName)}`,
      "",
      this.options.launcher.wrap(command, 1, this.options.nodes_per_block),
      "",
    ].join("\n");
  }

  async submit(command: string, blockName: string): Promise<string> {
    if (!this.context) throw new ConduitError("PROVIDER_NOT_STARTED", `${this.type}.submit was called before start.`);
    const jobName = `${blockName}.${Date.now()}`;
    const stem = join(this.scriptDir, jobName);
    const job: ClusterJob = {
      jobName,
      scriptPath: `${stem}.submit`,
      stdoutPath: `${stem}.stdout`,
      stderrPath: `${stem}.stderr`,
      cancelled: false,
    };
    await writeFile(job.scriptPath, this.jobScript(command, job), { mode: 0o700 });
    const argv = this.submitCommand(job.scriptPath);
    const result = await this.run(argv);
    if (result.exitCode !== 0) throw new SchedulerCommandError(argv, result);
    const jobId = this.parseJobId(result.stdout);
    if (jobId === undefined) throw new SchedulerCommandError(argv, result, "printed no job id");
    this.jobs.set(jobId, job);
    this.context.log.debug(`${this.type} submitted ${blockName} as job ${jobId} (${job.scriptPath}).`);
    return jobId;
  }

  async status(jobIds: readonly string[]): Promise<Map<string, JobStatus>> {
    const statuses = new Map<string, JobStatus>();
    const ask: string[] = [];
    for (const jobId of jobIds) {
      const job = this.jobs.get(jobId);
      if (!job) statuses.set(jobId, { state: "missing", message: `${this.type} submitted no job ${jobId}` });
      else if (job.final) statuses.set(jobId, job.final);
      else ask.push(jobId);
    }
    const answers = ask.length > 0 ? await this.queryStates(ask) : new Map<string, JobStatus>();
    for (const jobId of ask) {
      const job = this.jobs.get(jobId) as ClusterJob;
      const answer = answers.get(jobId) ?? { state: "missing", message: "the scheduler no longer knows it" };
      const status: JobStatus = {
        ...answer,
        scriptPath: job.scriptPath,
        stdoutPath: job.stdoutPath,
        stderrPath: job.stderrPath,
      };
      if (TERMINAL_JOB_STATES.has(status.state)) {
        if (job.cancelled) status.state = "cancelled";
        if (status.state === "timeout") status.walltime = this.options.walltime;
        job.final = status;
      }
      statuses.set(jobId, status);
    }
    return statuses;
  }

  async cancel(jobIds: readonly string[]): Promise<void> {
    const live = jobIds.filter((jobId) => {
      const job = this.jobs.get(jobId);
      return job !== undefined && job.final === undefined;
    });
    if (live.length === 0) return;
    for (const jobId of live) (this.jobs.get(jobId) as ClusterJob).cancelled = true;
    const argv = this.cancelCommand(live);
    const result = await this.run(argv);
    if (result.exitCode !== 0) throw new SchedulerCommandError(argv, result);
    // The scheduler takes a moment to end a job (its processes get SIGTERM, then SIGKILL): wait for it.
    const deadline = Date.now() + this.options.cmd_timeout * 1000;
    let left = live;
    while (left.length > 0 && Date.now() < deadline) {
      const statuses = await this.status(left);
      left = left.filter((jobId) => !TERMINAL_JOB_STATES.has(statuses.get(jobId)?.state ?? "missing"));
      if (left.length > 0) await sleep(CANCEL_POLL_MS);
    }
  }

  /** Runs a scheduler command with cmd_timeout, in the script folder, with the UEP's environment. */
  protected run(argv: readonly string[]): Promise<CommandResult> {
    const runCommand = this.runCommand ?? execCommand;
    return runCommand(argv, {
      timeoutMs: this.options.cmd_timeout * 1000,
      env: this.context?.env,
      cwd: this.scriptDir,
    });
  }

  /** Runs a status command; a failure throws SchedulerCommandError. */
  protected async query(argv: readonly string[], accept?: (result: CommandResult) => boolean): Promise<CommandResult> {
    const result = await this.run(argv);
    if (result.exitCode !== 0 && !accept?.(result)) throw new SchedulerCommandError(argv, result);
    return result;
  }
}

/** Directive lines: `prefix value` for each value that is set. */
export function directiveLines(prefix: string, values: ReadonlyArray<string | false | undefined>): string[] {
  return values.filter((value): value is string => typeof value === "string").map((value) => `${prefix} ${value}`);
}

/** The admin's scheduler_options as lines (none when empty). */
export function schedulerOptionLines(text: string): string[] {
  return text.trim() === "" ? [] : [text.replace(/\n+$/, "")];
}
