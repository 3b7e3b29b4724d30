/**
 * LocalProvider: every block is a shell on this host, in its own process
 * group, running `<worker_init>` and then `exec <launch command>`, so what
 * worker_init exports reaches the block manager and its workers. The script
 * and the block's stdout/stderr are kept in `<runDir>/submit_scripts/`.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, openSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ConduitError } from "@conduit/protocol/wire";
import { ConfigError } from "../errors.js";
import { type Options, parseOptions } from "../option-fields.js";
import { BLOCK_FIELDS, BlockOptionsProvider, checkBlockCounts, workerInitLines } from "./block-options.js";
import type { JobState, JobStatus, Provider, ProviderContext } from "./provider-types.js";

export const LOCAL_PROVIDER_FIELDS = BLOCK_FIELDS;

export type LocalProviderOptions = Options<typeof LOCAL_PROVIDER_FIELDS>;

/** After SIGTERM, a block has this long to exit before its process group gets SIGKILL. */
const CANCEL_GRACE_MS = 3000;

interface LocalJob {
  pgid: number;
  state: JobState;
  exitCode?: number;
  signal?: string;
  cancelled: boolean;
  exited: Promise<void>;
  scriptPath: string;
  stdoutPath: string;
  stderrPath: string;
}

export class LocalProvider extends BlockOptionsProvider<LocalProviderOptions> implements Provider {
  readonly type = "LocalProvider";
  /** Job states are known in memory the moment a process exits: polling them is cheap. */
  readonly pollingIntervalMs = 500;
  private readonly jobs = new Map<string, LocalJob>();
  private scriptDir = "";
  private shell = "/bin/sh";
  private context: ProviderContext | undefined;

  static parse(raw: unknown, path: string, source?: string): LocalProvider {
    const options = parseOptions(raw, path, "LocalProvider", LOCAL_PROVIDER_FIELDS, source);
    checkBlockCounts(options, path);
    if (options.nodes_per_block !== 1) {
      throw new ConfigError(
        `${path}.nodes_per_block must be 1 for LocalProvider, which runs each block on this host (got ${options.nodes_per_block}).`,
      );
    }
    return new LocalProvider(options);
  }

  async start(context: ProviderContext): Promise<void> {
    this.context = context;
    this.scriptDir = join(context.runDir, "submit_scripts");
    await mkdir(this.scriptDir, { recursive: true, mode: 0o700 });
    // bash when there is one: worker_init lines such as `source venv/bin/activate` are bash, and Parsl runs them in bash too.
    this.shell = existsSync("/bin/bash") ? "/bin/bash" : "/bin/sh";
  }

  async submit(command: string, jobName: string): Promise<string> {
    const context = this.context;
    if (!context) throw new ConduitError("PROVIDER_NOT_STARTED", "LocalProvider.submit was called before start.");
    const stem = join(this.scriptDir, `${jobName}.${Date.now()}`);
    const scriptPath = `${stem}.sh`;
    const stdoutPath = `${stem}.stdout`;
    const stderrPath = `${stem}.stderr`;
    await writeFile(scriptPath, blockScript(this.options.worker_init, command, jobName), { mode: 0o700 });
    const out = openSync(stdoutPath, "a", 0o600);
    const err = openSync(stderrPath, "a", 0o600);
    let child: ChildProcess;
    try {
      // detached: its own process group, so cancel reaches the block manager and every worker it forked.
      child = spawn(this.shell, [scriptPath], {
        cwd: context.runDir,
        env: context.env,
        detached: true,
        stdio: ["ignore", out, err],
      });
    } finally {
      closeSync(out);
      closeSync(err);
    }
    // Nothing is awaited between spawn and these listeners: 'spawn', 'error' and 'exit' may come at the next tick.
    const started = new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", (error) =>
        reject(
          new ConduitError("PROVIDER_SUBMIT_FAILED", `${this.shell} ${scriptPath} could not start: ${error.message}.`),
        ),
      );
    });
    const pid = child.pid;
    if (pid === undefined) {
      await started;
      throw new ConduitError("PROVIDER_SUBMIT_FAILED", `${this.shell} ${scriptPath} could not start.`);
    }
    const job: LocalJob = {
      pgid: pid,
      state: "running",
      cancelled: false,
      exited: new Promise((resolve) => child.once("exit", () => resolve())),
      scriptPath,
      stdoutPath,
      stderrPath,
    };
    liveGroups.add(pid);
    child.once("exit", (code, signal) => {
      liveGroups.delete(pid);
      job.exitCode = code ?? undefined;
      job.signal = signal ?? undefined;
      job.state = job.cancelled ? "cancelled" : code === 0 ? "completed" : "failed";
    });
    await started;
    const jobId = String(pid);
    this.jobs.set(jobId, job);
    context.log.debug(`LocalProvider started ${jobName} as job ${jobId} (${scriptPath}).`);
    return jobId;
  }

  async status(jobIds: readonly string[]): Promise<Map<string, JobStatus>> {
    const statuses = new Map<string, JobStatus>();
    for (const jobId of jobIds) {
      const job = this.jobs.get(jobId);
      if (!job) {
        statuses.set(jobId, { state: "missing", message: `LocalProvider started no job ${jobId}.` });
        continue;
      }
      const status: JobStatus = {
        state: job.state,
        scriptPath: job.scriptPath,
        stdoutPath: job.stdoutPath,
        stderrPath: job.stderrPath,
      };
      if (job.exitCode !== undefined) status.exitCode = job.exitCode;
      if (job.signal !== undefined) status.signal = job.signal;
      statuses.set(jobId, status);
    }
    return statuses;
  }

  async cancel(jobIds: readonly string[]): Promise<void> {
    await Promise.all(jobIds.map((jobId) => this.cancelOne(jobId)));
  }

  private async cancelOne(jobId: string): Promise<void> {
    const job = this.jobs.get(jobId);
    if (!job) return;
    if (job.state === "running") {
      job.cancelled = true;
      killGroup(job.pgid, "SIGTERM");
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([job.exited, new Promise((resolve) => (timer = setTimeout(resolve, CANCEL_GRACE_MS)))]);
      clearTimeout(timer);
    }
    // The group may outlive its leader (a worker busy in a long computation): sweep it.
    killGroup(job.pgid, "SIGKILL");
    await job.exited;
  }
}

/** The block's script: worker_init (checked, see workerInitLines), then `exec` of the launch command. */
function blockScript(workerInit: string, command: string, jobName: string): string {
  return [
    `# ${jobName}, started by Conduit's LocalProvider`,
    ...workerInitLines(workerInit),
    `exec ${command}`,
    "",
  ].join("\n");
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is gone already.
  }
}

/**
 * Process groups of running blocks. Blocks exit by themselves when the UEP's
 * interchange connection closes; this is the backstop for a UEP that exits
 * normally without shutting its engine down.
 */
const liveGroups = new Set<number>();
process.once("exit", () => {
  for (const pgid of liveGroups) killGroup(pgid, "SIGKILL");
});
