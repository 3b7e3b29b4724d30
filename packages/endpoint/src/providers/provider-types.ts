/**
 * The provider interface: how an engine gets blocks of workers from a
 * resource manager (this host, Slurm, PBS, …). A provider knows only jobs:
 * it submits a shell command as a job, reports job states, and cancels jobs;
 * the engine decides how many blocks to run (Parsl's ExecutionProvider).
 */
import type { Logger } from "../logging.js";
import type { CommandRunner } from "./command-runner.js";

/**
 * The state of one job (block), whatever the scheduler calls it; each provider
 * maps its scheduler's states through a table onto these.
 *
 * - `unknown`: the scheduler gave a state that maps to nothing here.
 * - `pending`: queued, not started.
 * - `running`: started; its block manager may or may not have connected yet.
 * - `held`: held or suspended by the scheduler; it may run later.
 * - `cancelled`: cancelled (by the engine when scaling in, or by an admin).
 * - `completed`: ended with exit code 0.
 * - `failed`: ended with a non-zero exit code or a signal, or could not start.
 * - `timeout`: killed at its walltime (not a failure of the job's command).
 * - `missing`: the scheduler no longer knows the job.
 */
export type JobState =
  | "unknown"
  | "pending"
  | "running"
  | "held"
  | "cancelled"
  | "completed"
  | "failed"
  | "timeout"
  | "missing";

export const JOB_STATES: readonly JobState[] = [
  "unknown",
  "pending",
  "running",
  "held",
  "cancelled",
  "completed",
  "failed",
  "timeout",
  "missing",
];

/** A job in one of these states will never run (again). */
export const TERMINAL_JOB_STATES: ReadonlySet<JobState> = new Set<JobState>([
  "cancelled",
  "completed",
  "failed",
  "timeout",
  "missing",
]);

export interface JobStatus {
  state: JobState;
  /** Exit code of the job's command, when it ended and the scheduler says. */
  exitCode?: number;
  /** Signal that ended the job's command, e.g. `SIGKILL`. */
  signal?: string;
  /** The scheduler's own words, when it gives any. */
  message?: string;
  stdoutPath?: string;
  stderrPath?: string;
  /** The job script the provider submitted (batch schedulers). */
  scriptPath?: string;
  /** The job's walltime, `HH:MM:SS`, when it ended at it (`timeout`). */
  walltime?: string;
  /** The scheduler killed the job for exceeding its memory (Slurm's OUT_OF_MEMORY, LSF's TERM_MEMLIMIT, …). */
  outOfMemory?: boolean;
}

/** What a provider needs from the engine that owns it, given at start. */
export interface ProviderContext {
  /** The UEP's directory; job scripts and their output go to `<runDir>/submit_scripts/`. */
  runDir: string;
  /** Environment jobs start with. */
  env: NodeJS.ProcessEnv;
  log: Logger;
  /** Runs the scheduler's commands (sbatch, qstat, …); default: a child process. */
  runCommand?: CommandRunner;
}

export interface Provider {
  /** The config `type`, e.g. `LocalProvider`. */
  readonly type: string;
  /** Blocks started when the engine starts. */
  readonly initBlocks: number;
  /** Blocks kept even when idle. */
  readonly minBlocks: number;
  /** Blocks never exceeded. */
  readonly maxBlocks: number;
  readonly nodesPerBlock: number;
  /** Worker slots per waiting task that scaling aims for (0 to 1). */
  readonly parallelism: number;
  /** Shell text run before each block's launch command, in the same shell (its exports reach the workers). */
  readonly workerInit: string;
  /** How often the engine asks for job states. */
  readonly pollingIntervalMs: number;
  /** Called once by the engine before the first submit. */
  start(context: ProviderContext): Promise<void>;
  /** Starts `command` (after worker_init) as one job; returns the job id. */
  submit(command: string, jobName: string): Promise<string>;
  /** States of the given jobs; a job the provider does not know is `missing`. */
  status(jobIds: readonly string[]): Promise<Map<string, JobStatus>>;
  /** Cancels the given jobs and waits until they are gone. */
  cancel(jobIds: readonly string[]): Promise<void>;
}

/** The `provider:` block of an engine config. */
export interface ProviderConfig {
  type: string;
  [key: string]: unknown;
}
