/**
 * HighThroughputEngine (`GlobusComputeEngine` in Globus configs): an
 * interchange inside the UEP, listening on loopback or on `address` (TLS
 * unless `encrypted: false`), and blocks of workers
 * that a provider starts (a local shell, later Slurm or PBS jobs). Each block
 * runs a block manager that connects back to the interchange and forks
 * `max_workers_per_node` workers, and holds up to `prefetch_capacity` more
 * tasks queued for them. Blocks follow the load: more while tasks wait for a
 * worker (up to max_blocks), fewer when idle (down to min_blocks).
 *
 * When a block is lost, the tasks it may have started (at most one per
 * worker) count as lost (WORKER_LOST, or run again per
 * max_retries_on_system_failure); the prefetched tasks it had not started go
 * back to the front of the queue without using a retry.
 *
 * Tasks wait in the interchange's queue, so the engine reports when each is
 * sent to a block (`context.onStarted`; prefetched ones count as started),
 * and `cancel` can drop one still in the queue.
 */
import { randomBytes } from "node:crypto";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { networkInterfaces } from "node:os";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ConduitError, toWireError } from "@conduit/protocol/wire";
import type { EngineTask } from "../engine-task.js";
import { EngineError } from "../errors.js";
import { parseOptions } from "../option-fields.js";
import { describeJobEnd, describeJobOutput, type JobEndCause, jobEndCause, readTail } from "../providers/job-output.js";
import { type JobStatus, type Provider, TERMINAL_JOB_STATES } from "../providers/provider-types.js";
import { CONDUIT_VERSION } from "../version.js";
import { type BlockManagerLaunch, blockManagerArgs, blockManagerCommand } from "../worker/block-manager-command.js";
import { cpuAffinityText } from "../worker/cpu-affinity.js";
import { INTERCHANGE_PROTOCOL_VERSION, type Registration } from "../worker/interchange-protocol.js";
import { checkHardLimits } from "../worker/worker-limits.js";
import {
  type ContainerSettings,
  containerFailure,
  containerLaunchCommand,
  containerSettings,
  inContainerCommand,
} from "./container-command.js";
import type { Engine, EngineContext, EngineStatus } from "./engine-types.js";
import {
  checkHighThroughputOptions,
  EVERY_ADDRESS,
  HIGH_THROUGHPUT_FIELDS,
  type HighThroughputOptions,
} from "./high-throughput-options.js";
import { type ConnectedBlock, Interchange } from "./interchange.js";
import { createInterchangeTls } from "./interchange-tls.js";
import { shutdownError, TaskLedger } from "./task-ledger.js";

/** Blocks that end before connecting this many times in a row fail the waiting tasks. */
export const BLOCK_START_ATTEMPTS = 3;
/** A block still not connected after this long gets a warning in the log (it may be queued, or stuck in worker_init). */
const SLOW_START_WARNING_MS = 60_000;
/**
 * How long to wait for a lost block's job to report how it ended, which names
 * the tasks' error (BlockWalltime, BlockCancelled, …). Only the lost block's
 * own tasks wait; a loaded scheduler answered `squeue` after its 10 s command
 * timeout, or kept a job completing, for longer than 2 s and then 10 s (CI
 * saw BlockWalltime come out as WorkerLost twice).
 */
const LOST_BLOCK_STATUS_WAIT_MS = 60_000;
/** Between two status queries of a lost block's job. */
const LOST_BLOCK_STATUS_POLL_MS = 250;

type BlockState =
  /** Submitted to the provider; its block manager has not connected yet. */
  | "pending"
  /** Its block manager is connected and takes tasks. */
  | "connected"
  /** Takes no tasks: told to shut down (idle too long), held until its tasks end (partly idle), or past its drain_period. */
  | "draining";

interface BlockRecord {
  id: string;
  state: BlockState;
  jobId?: string;
  submittedAt: number;
  warnedSlow: boolean;
}

interface Running {
  context: EngineContext;
  ledger: TaskLedger;
  interchange: Interchange;
  /** How every block manager reaches the interchange; each launch adds its block id. */
  launch: Omit<BlockManagerLaunch, "blockId">;
  /** Files to delete at shutdown: the secret, the TLS folder, the Unix socket. */
  secretPath: string;
  socketPath?: string;
  tlsDir?: string;
  timers: NodeJS.Timeout[];
}

export class HighThroughputEngine implements Engine {
  readonly type = "HighThroughputEngine";
  readonly reportsStarts = true;
  /** Scales its blocks on the tasks it holds, so it is handed every task at once. */
  readonly queuesTasks = true;
  private readonly provider: Provider;
  private running: Running | undefined;
  private readonly blocks = new Map<string, BlockRecord>();
  /** Jobs started and not yet cancelled: the ones shutdown must stop. */
  private readonly liveJobs = new Set<string>();
  private readonly submissions = new Set<Promise<void>>();
  private nextBlockId = 0;
  private startFailures = 0;
  private broken = false;
  private scaleQueued = false;
  /** Since when worker slots have exceeded the tasks by a block or more (htex_auto_scale); undefined: they do not. */
  private surplusSince: number | undefined;
  private polling = false;
  private stopping: Promise<void> | undefined;
  /** The container blocks run in (container_type), if any. */
  private readonly container: ContainerSettings | undefined;

  constructor(readonly options: HighThroughputOptions) {
    this.provider = options.provider;
    this.container = containerSettings(options, "engine");
  }

  /** Checks the `engine:` options (without `type`) and builds the engine; nothing starts yet. */
  static parse(raw: Record<string, unknown>, path = "engine", source?: string): HighThroughputEngine {
    const options = parseOptions(raw, path, "HighThroughputEngine", HIGH_THROUGHPUT_FIELDS, source);
    checkHighThroughputOptions(options, path, source);
    return new HighThroughputEngine(options);
  }

  async start(context: EngineContext): Promise<void> {
    // Before anything starts: a limit no block could set fails the UEP's start with one sentence.
    checkHardLimits(this.options, "engine");
    const ledger = new TaskLedger(this.options.max_retries_on_system_failure, context.onResult);
    const secret = randomBytes(32).toString("hex");
    const tag = `${process.pid}.${randomBytes(4).toString("hex")}`;
    // The secret goes to blocks in a file only its owner can read, not on a command line anyone can see in `ps`.
    const secretPath = join(context.runDir, `interchange.${tag}.secret`);
    const tlsDir = this.options.encrypted ? join(context.runDir, `interchange.${tag}.tls`) : undefined;
    // Containerized blocks reach the interchange through a Unix socket in the run folder they see (bind-mounted).
    const socketPath = this.container ? join(context.runDir, `interchange.${tag}.sock`) : undefined;
    const { address, heartbeat_period, heartbeat_threshold } = this.options;
    let interchange: Interchange | undefined;
    let launch: Running["launch"];
    try {
      await mkdir(dirname(secretPath), { recursive: true, mode: 0o700 });
      await writeFile(secretPath, secret, { mode: 0o600 });
      const tls = tlsDir ? await createInterchangeTls(tlsDir) : undefined;
      interchange = new Interchange(
        {
          secret,
          prefetch: this.options.prefetch_capacity,
          tls,
          heartbeatPeriodMs: heartbeat_period * 1000,
          heartbeatThresholdMs: heartbeat_threshold * 1000,
        },
        {
          admit: (registration) => this.admit(registration),
          connected: (block) => this.onConnected(block),
          reserved: () => this.startingSlots(),
          dispatched: (tasks, blockId) =>
            context.onStarted?.(
              tasks.map((task) => task.taskId),
              { blockId, jobId: this.blocks.get(blockId)?.jobId },
            ),
          result: (result) => ledger.complete(result),
          lost: (task, reason) => this.onLost(task, reason),
          closed: (block, started, unstarted, why) => void this.onClosed(block, started, unstarted, why),
          draining: (block) => this.onDraining(block),
          emptied: (block) => this.onEmptied(block),
        },
        context.log,
      );
      const port = await interchange.listen({
        host: address ?? "127.0.0.1",
        port: this.options.worker_port,
        range: this.options.worker_port_range,
      });
      if (socketPath) await listenUnix(interchange, socketPath);
      launch = {
        addresses: blockAddresses(address),
        port,
        socket: socketPath,
        workers: this.options.max_workers_per_node,
        secretFile: secretPath,
        tlsDir,
        heartbeatPeriod: heartbeat_period,
        heartbeatThreshold: heartbeat_threshold,
        coresPerWorker: this.options.cores_per_worker,
        accelerators: this.options.available_accelerators,
        workingDir:
          this.options.working_dir === undefined ? undefined : resolve(context.runDir, this.options.working_dir),
        sandboxDir: this.options.run_in_sandbox
          ? resolve(context.runDir, this.options.working_dir ?? "tasks_working_dir")
          : undefined,
        memPerWorker: this.options.mem_per_worker,
        cpuAffinity: cpuAffinityText(this.options.cpu_affinity),
        drainPeriod: this.options.drain_period,
        limits: this.options,
      };
      // Fail now, not at the first block, when the package is not built.
      blockManagerCommand({ ...launch, blockId: "0" });
      await this.provider.start({ runDir: context.runDir, env: context.env, log: context.log });
    } catch (err) {
      await interchange?.close();
      await rm(secretPath, { force: true });
      if (socketPath) await rm(socketPath, { force: true });
      if (tlsDir) await rm(tlsDir, { recursive: true, force: true });
      throw new ConduitError("ENGINE_START_FAILED", `The ${this.type} could not start: ${(err as Error).message}`, {
        cause: err,
      });
    }

    const { strategy_period } = this.options.job_status_kwargs;
    const timers = [
      setInterval(() => this.strategyTick(), strategy_period * 1000),
      setInterval(() => void this.pollPendingBlocks(), this.provider.pollingIntervalMs),
    ];
    for (const timer of timers) timer.unref();
    this.running = { context, ledger, interchange, launch, secretPath, socketPath, tlsDir, timers };
    context.log.info(
      `HighThroughputEngine: interchange on ${address ?? "127.0.0.1"}:${launch.port} (${tlsDir ? "TLS" : "plain TCP, encrypted: false"}; blocks try ${launch.addresses.join(", ")}); ${this.provider.type} blocks ` +
        `(init ${this.provider.initBlocks}, min ${this.provider.minBlocks}, max ${this.provider.maxBlocks}) ` +
        `of ${this.options.max_workers_per_node} worker(s), prefetch_capacity ${this.options.prefetch_capacity}.`,
    );
    if (!tlsDir && address !== undefined && !isLoopback(address)) {
      context.log.warn(
        `The interchange listens on ${address} with encrypted: false: tasks and results cross the network in clear text; set encrypted: true unless that network is trusted.`,
      );
    }
    for (let i = 0; i < this.provider.initBlocks; i++) this.launch();
  }

  submit(task: EngineTask): void {
    const { ledger, interchange, context } = this.started();
    if (this.stopping) {
      context.onResult({ taskId: task.taskId, ok: false, error: shutdownError(this.type)(task.taskId) });
      return;
    }
    if (!ledger.add(task)) {
      context.log.warn(`Task ${task.taskId} is already on the ${this.type}; ignoring the duplicate.`);
      return;
    }
    // After blocks failed to start, a new task gets new attempts: the cause may be gone.
    this.broken = false;
    interchange.submit(task);
    this.scheduleScale();
  }

  /** Drops a task still in the interchange's queue (no block has it): true, and it gets no result. */
  cancel(taskId: string): boolean {
    const running = this.running;
    if (!running || this.stopping || !running.interchange.remove(taskId)) return false;
    running.ledger.forget(taskId);
    running.context.log.debug(`Task ${taskId} was cancelled while queued in the interchange; dropped it.`);
    return true;
  }

  status(): EngineStatus {
    let totalWorkers = 0;
    let idleWorkers = 0;
    let prefetchCapacity = 0;
    for (const block of this.running?.interchange.blocks() ?? []) {
      totalWorkers += block.workers;
      prefetchCapacity += this.options.prefetch_capacity;
      if (!block.draining) idleWorkers += Math.max(0, block.workers - block.inFlight.size);
    }
    return {
      type: this.type,
      totalWorkers,
      idleWorkers,
      pendingTasks: this.running?.interchange.waiting ?? 0,
      outstandingTasks: this.running?.ledger.size ?? 0,
      prefetchCapacity,
      blocks: [...this.blocks.values()].filter((b) => b.state !== "draining").length,
    };
  }

  shutdown(): Promise<void> {
    this.stopping ??= this.stop();
    return this.stopping;
  }

  private async stop(): Promise<void> {
    const running = this.running;
    if (!running) return;
    for (const timer of running.timers) clearInterval(timer);
    running.ledger.failAll(shutdownError(this.type));
    running.interchange.takeQueued();
    for (const block of running.interchange.blocks()) running.interchange.drain(block.blockId);
    // A block being submitted right now gets its job id first, so that it is cancelled too.
    await Promise.allSettled(this.submissions);
    await this.provider.cancel([...this.liveJobs]);
    this.liveJobs.clear();
    this.blocks.clear();
    await running.interchange.close();
    await rm(running.secretPath, { force: true });
    if (running.socketPath) await rm(running.socketPath, { force: true });
    if (running.tlsDir) await rm(running.tlsDir, { recursive: true, force: true });
    running.context.log.info("HighThroughputEngine shut down.");
  }

  private launch(): void {
    const running = this.running;
    if (!running) return;
    const id = String(this.nextBlockId++);
    const record: BlockRecord = { id, state: "pending", submittedAt: Date.now(), warnedSlow: false };
    this.blocks.set(id, record);
    const launch = { ...running.launch, blockId: id };
    const container = this.container;
    const command = container
      ? containerLaunchCommand(container, running.context.runDir, inContainerCommand(blockManagerArgs(launch)))
      : blockManagerCommand(launch);
    running.context.log.info(
      container
        ? `Starting block ${id} with ${this.provider.type} in a ${container.type} container; launch command: ${command}`
        : `Starting block ${id} with ${this.provider.type}.`,
    );
    const submission = this.provider.submit(command, `block-${id}`).then(
      (jobId) => {
        record.jobId = jobId;
        this.liveJobs.add(jobId);
      },
      (err: Error) => {
        if (this.blocks.get(id) !== record) return;
        this.blocks.delete(id);
        this.startFailed(record, `${this.provider.type} could not submit it (${err.message})`);
      },
    );
    this.submissions.add(submission);
    void submission.finally(() => this.submissions.delete(submission));
  }

  /**
   * Why a block may not register: not a block this engine is starting, or a
   * block manager of other versions, which fails its block at once (it
   * would fail again on every node set up the same way).
   */
  private admit(registration: Registration): string | undefined {
    const record = this.blocks.get(registration.blockId);
    if (record?.state !== "pending") return `block ${registration.blockId} is not one this engine is starting`;
    const mismatch = versionMismatch(registration, this.container);
    if (!mismatch) return undefined;
    this.blocks.delete(record.id);
    this.startFailed(record, mismatch, undefined, true);
    if (record.jobId) void this.cancelJob(record.jobId);
    return mismatch;
  }

  private onConnected(block: ConnectedBlock): void {
    const record = this.blocks.get(block.blockId);
    if (record) record.state = "connected";
    this.startFailures = 0;
    this.broken = false;
    this.running?.context.log.info(
      `Block ${block.blockId} connected: block manager pid ${block.pid} on ${block.hostname} (via ${block.via}), ${block.workers} worker(s).`,
    );
  }

  /** Its manager reached drain_period: it finishes what it holds and exits; a new block replaces it if tasks wait. */
  private onDraining(block: ConnectedBlock): void {
    const record = this.blocks.get(block.blockId);
    if (record) record.state = "draining";
    this.running?.context.log.info(
      `Block ${block.blockId} reached its drain_period (${this.options.drain_period} s): it takes no new tasks, finishes its ${block.inFlight.size} task(s) and exits.`,
    );
    this.scheduleScale();
  }

  /** A held (partly idle) block finished its last task: shut it down and cancel its job. */
  private onEmptied(block: ConnectedBlock): void {
    const running = this.running;
    const record = this.blocks.get(block.blockId);
    if (!running || this.stopping || !record) return;
    running.context.log.info(`Block ${block.blockId} finished its last task after being drained; shutting it down.`);
    running.interchange.drain(block.blockId);
    if (record.jobId) void this.cancelJob(record.jobId);
  }

  private onLost(task: EngineTask, reason: string, cause?: JobEndCause): void {
    const running = this.running;
    if (!running || this.stopping) return;
    if (running.ledger.lost(task, reason, cause)) {
      running.context.log.warn(`${reason}; running it again.`);
      running.interchange.requeue(task);
    } else {
      running.context.log.warn(`${reason}.`);
    }
  }

  private async onClosed(
    block: ConnectedBlock,
    started: EngineTask[],
    unstarted: EngineTask[],
    why?: string,
  ): Promise<void> {
    const record = this.blocks.get(block.blockId);
    this.blocks.delete(block.blockId);
    const running = this.running;
    if (!running || this.stopping) return;
    if (record?.state === "draining" && started.length === 0 && unstarted.length === 0) {
      // A block that drained itself (drain_period) leaves its job to end; make sure it does.
      if (record.jobId && this.liveJobs.has(record.jobId)) void this.cancelJob(record.jobId);
      this.scheduleScale();
      return;
    }
    if (unstarted.length > 0) {
      // Never started, so nothing of them ran: they go first to another block, without using a retry.
      running.context.log.warn(
        `Block ${block.blockId} was lost holding ${unstarted.length} prefetched task(s) it had not started; queued them again.`,
      );
      running.interchange.requeue(...unstarted);
      this.scheduleScale();
    }
    const { how, cause } = why ? { how: why, cause: undefined } : await this.describeLostBlock(record);
    const reason = `block ${block.blockId} (block manager pid ${block.pid} on ${block.hostname}${record?.jobId ? `, job ${record.jobId}` : ""}) was lost: ${how}`;
    running.context.log.warn(`The ${reason}.`);
    // Whatever is left of the block (a worker busy in a long computation) is stopped too.
    if (record?.jobId) void this.cancelJob(record.jobId);
    for (const task of started) this.onLost(task, `${reason}, while running task ${task.taskId}`, cause);
    this.scheduleScale();
  }

  /** How a lost block's job ended, and its named cause, if the provider can tell within a short wait. */
  private async describeLostBlock(record: BlockRecord | undefined): Promise<{ how: string; cause?: JobEndCause }> {
    const jobId = record?.jobId;
    const deadline = Date.now() + LOST_BLOCK_STATUS_WAIT_MS;
    while (jobId && !this.stopping && Date.now() < deadline) {
      const status = (await this.provider.status([jobId]).catch(() => undefined))?.get(jobId);
      if (status && TERMINAL_JOB_STATES.has(status.state)) {
        const cause = jobEndCause(status);
        return { how: `its ${cause ? "job" : "block manager"} ${describeJobEnd(status)}`, cause };
      }
      await sleep(LOST_BLOCK_STATUS_POLL_MS);
    }
    return { how: "its connection to the interchange closed" };
  }

  private async pollPendingBlocks(): Promise<void> {
    const running = this.running;
    const pending = [...this.blocks.values()].filter((b) => b.state === "pending" && b.jobId !== undefined);
    if (!running || this.stopping || this.polling || pending.length === 0) return;
    this.polling = true;
    let statuses: Map<string, JobStatus>;
    try {
      statuses = await this.provider.status(pending.map((b) => b.jobId as string));
    } catch (err) {
      running.context.log.warn(`${this.provider.type} could not report job states: ${(err as Error).message}.`);
      return;
    } finally {
      this.polling = false;
    }
    for (const record of pending) {
      if (this.blocks.get(record.id) !== record || record.state !== "pending") continue;
      const status = statuses.get(record.jobId as string);
      if (status && TERMINAL_JOB_STATES.has(status.state)) {
        this.blocks.delete(record.id);
        this.liveJobs.delete(record.jobId as string);
        // A container's own failure (no runtime, no image, no Conduit in it) would be the same on every try.
        const containerCause = this.container && containerFailure(this.container, status.exitCode, jobOutput(status));
        if (containerCause) {
          this.startFailed(record, containerCause, status, true);
          continue;
        }
        this.startFailed(
          record,
          `job ${record.jobId} ${describeJobEnd(status)} before its block manager registered`,
          status,
        );
      } else if (!record.warnedSlow && Date.now() - record.submittedAt > SLOW_START_WARNING_MS) {
        record.warnedSlow = true;
        running.context.log.warn(
          `Block ${record.id} (job ${record.jobId}, ${status?.state ?? "unknown"}) has not connected after ${SLOW_START_WARNING_MS / 1000} s; if it is not queued, see its output (${status?.stderrPath ?? "the provider's job output"}).`,
        );
      }
    }
  }

  /** `final`: the cause would not go away by itself (other versions), so the waiting tasks fail now. */
  private startFailed(record: BlockRecord, detail: string, status?: JobStatus, final = false): void {
    const running = this.running;
    if (!running || this.stopping) return;
    this.startFailures = final ? BLOCK_START_ATTEMPTS : this.startFailures + 1;
    const output = describeJobOutput(status);
    running.context.log.warn(
      `Block ${record.id} failed to start: ${detail} (${this.startFailures} in a row).${output}`,
    );
    if (this.startFailures < BLOCK_START_ATTEMPTS) {
      this.scheduleScale();
      return;
    }
    this.startFailures = 0;
    this.broken = true;
    const error = toWireError(
      new EngineError(
        "BLOCK_START_FAILED",
        final
          ? `Block ${record.id} failed to start: ${detail}.`
          : `Blocks failed to start ${BLOCK_START_ATTEMPTS} times in a row (the last, block ${record.id}: ${detail}); fix worker_init or the provider settings in the endpoint config.${output}`,
      ),
    );
    for (const task of running.interchange.takeQueued()) running.ledger.fail(task.taskId, error);
  }

  private strategyTick(): void {
    this.scale();
    this.scaleIn();
  }

  private scheduleScale(): void {
    if (this.scaleQueued) return;
    this.scaleQueued = true;
    setImmediate(() => {
      this.scaleQueued = false;
      this.scale();
    });
  }

  /** Workers a block is expected to bring (its manager may start fewer, on a node with fewer cores). */
  private workersPerBlock(): number {
    const accelerators = this.options.available_accelerators.length;
    const perNode = Math.min(
      this.options.max_workers_per_node,
      accelerators > 0 ? accelerators : Number.POSITIVE_INFINITY,
    );
    return perNode * this.provider.nodesPerBlock;
  }

  /** Workers that blocks being started will bring. */
  private startingSlots(): number {
    let pending = 0;
    for (const block of this.blocks.values()) if (block.state === "pending") pending++;
    return pending * this.workersPerBlock();
  }

  /**
   * Adds blocks while tasks wait for a worker that no block, running or
   * starting, will have free: enough for `parallelism` × the waiting tasks
   * (as upstream), and at least one while tasks wait and no block runs.
   */
  private scale(): void {
    const running = this.running;
    if (!running || this.stopping || this.broken) return;
    const perBlock = this.workersPerBlock();
    let active = 0;
    for (const block of this.blocks.values()) if (block.state !== "draining") active++;
    // Prefetched tasks count as waiting: behind a long task they need another block as much as queued ones.
    const waiting = running.interchange.waiting;
    // Upstream's target: parallelism × the tasks the serving blocks run or wait for, in worker slots.
    let busy = 0;
    let slots = this.startingSlots();
    for (const block of running.interchange.blocks()) {
      if (block.draining) continue;
      busy += Math.min(block.inFlight.size, block.workers);
      slots += block.workers;
    }
    const strategy = this.options.job_status_kwargs.strategy;
    const wanted = Math.ceil((waiting + busy) * this.provider.parallelism);
    let add = strategy !== "none" && waiting > 0 && wanted > slots ? Math.ceil((wanted - slots) / perBlock) : 0;
    if (strategy !== "none" && waiting > 0 && active === 0) add = Math.max(add, 1);
    const floor =
      strategy === "none" ? Math.max(this.provider.initBlocks, waiting > 0 ? 1 : 0) : this.provider.minBlocks;
    add = Math.min(Math.max(add, floor - active), this.provider.maxBlocks - active);
    for (let i = 0; i < add; i++) this.launch();
  }

  /**
   * Removes blocks idle longer than max_idletime, longest idle first, down to
   * min_blocks; with htex_auto_scale, while the worker slots have exceeded
   * the tasks (× parallelism) by a block or more for max_idletime, it also
   * drains partly idle blocks, fewest tasks first: no new tasks, and once
   * their tasks end they are shut down and their jobs cancelled.
   */
  private scaleIn(): void {
    const running = this.running;
    const { strategy, max_idletime } = this.options.job_status_kwargs;
    if (!running || this.stopping || strategy === "none" || running.interchange.waiting > 0) {
      this.surplusSince = undefined;
      return;
    }
    this.releaseIdle(running, max_idletime);
    if (strategy === "htex_auto_scale") this.drainSurplus(running, max_idletime);
  }

  private drainSurplus(running: Running, maxIdletime: number): void {
    const perBlock = this.workersPerBlock();
    const serving = [...running.interchange.blocks()].filter((b) => !b.draining);
    const slots = serving.reduce((sum, b) => sum + b.workers, 0) + this.startingSlots();
    const tasks = running.ledger.size;
    let surplus = Math.floor((slots - tasks * this.provider.parallelism) / perBlock);
    if (surplus <= 0) {
      this.surplusSince = undefined;
      return;
    }
    const now = Date.now();
    this.surplusSince ??= now;
    if (now - this.surplusSince < maxIdletime * 1000) return;
    let active = [...this.blocks.values()].filter((b) => b.state !== "draining").length;
    const partlyIdle = serving
      .filter((b) => b.inFlight.size > 0 && b.inFlight.size < b.workers)
      .sort((a, b) => a.inFlight.size - b.inFlight.size);
    for (const block of partlyIdle) {
      if (surplus <= 0 || active <= this.provider.minBlocks) break;
      const record = this.blocks.get(block.blockId);
      if (record?.state !== "connected") continue;
      record.state = "draining";
      surplus--;
      active--;
      running.context.log.info(
        `Block ${block.blockId} is partly idle (${block.inFlight.size} of ${block.workers} worker(s) busy) while ${slots} worker slot(s) serve ${tasks} task(s); draining it (no new tasks), to cancel it once its tasks end.`,
      );
      running.interchange.hold(block.blockId);
    }
    this.surplusSince = undefined;
  }

  private releaseIdle(running: Running, max_idletime: number): void {
    const now = Date.now();
    const idle = [...running.interchange.blocks()]
      .filter((b) => !b.draining && b.inFlight.size === 0 && now - b.idleSince >= max_idletime * 1000)
      .sort((a, b) => a.idleSince - b.idleSince);
    let active = [...this.blocks.values()].filter((b) => b.state !== "draining").length;
    for (const block of idle) {
      if (active <= this.provider.minBlocks) return;
      const record = this.blocks.get(block.blockId);
      if (!record) continue;
      record.state = "draining";
      active--;
      running.context.log.info(
        `Block ${block.blockId} was idle for ${Math.round((now - block.idleSince) / 1000)} s; shutting it down (min_blocks: ${this.provider.minBlocks}).`,
      );
      running.interchange.drain(block.blockId);
      if (record.jobId) void this.cancelJob(record.jobId);
    }
  }

  private async cancelJob(jobId: string): Promise<void> {
    try {
      await this.provider.cancel([jobId]);
      this.liveJobs.delete(jobId);
    } catch (err) {
      this.running?.context.log.warn(`${this.provider.type} could not cancel job ${jobId}: ${(err as Error).message}.`);
    }
  }

  private started(): Running {
    if (!this.running) {
      throw new ConduitError("ENGINE_NOT_STARTED", `The ${this.type} was given a task before start(); start it first.`);
    }
    return this.running;
  }
}

function isLoopback(address: string): boolean {
  return address === "localhost" || address === "::1" || address.startsWith("127.");
}

/** What block managers are told to try: the one `address`, or every address of this host (non-loopback first). */
function blockAddresses(address: string | undefined): string[] {
  if (address === undefined) return ["127.0.0.1"];
  if (!EVERY_ADDRESS.includes(address)) return [address];
  const wantV6 = address === "::";
  const all = Object.values(networkInterfaces())
    .flat()
    .filter((i) => i !== undefined && (wantV6 || i.family === "IPv4") && !(i.family === "IPv6" && i.scopeid))
    .sort((a, b) => Number(a?.internal) - Number(b?.internal));
  return [...new Set(all.map((i) => i?.address as string))];
}

/**
 * Why a block manager's versions do not fit this UEP, or undefined: the same
 * interchange protocol and Conduit version, and Node of the same major
 * version (tasks and bundled code run in the workers' Node).
 */
function versionMismatch(r: Registration, container?: ContainerSettings): string | undefined {
  const major = (v: string) => v.replace(/^v/, "").split(".")[0];
  if (
    r.v === INTERCHANGE_PROTOCOL_VERSION &&
    r.conduitVersion === CONDUIT_VERSION &&
    major(r.nodeVersion) === major(process.version)
  )
    return undefined;
  if (container) {
    return (
      `its block manager in the ${container.type} ${container.uri ? `image '${container.uri}'` : "container"} runs Conduit ${r.conduitVersion} on Node ${r.nodeVersion} (interchange protocol ${r.v}), ` +
      `but the user endpoint runs Conduit ${CONDUIT_VERSION} on Node ${process.version} (interchange protocol ${INTERCHANGE_PROTOCOL_VERSION}); ` +
      `rebuild the image with Node ${major(process.version)} and Conduit ${CONDUIT_VERSION}, as the endpoint has`
    );
  }
  return (
    `its block manager on ${r.hostname} runs Conduit ${r.conduitVersion} on Node ${r.nodeVersion} (interchange protocol ${r.v}), ` +
    `but the user endpoint runs Conduit ${CONDUIT_VERSION} on Node ${process.version} (interchange protocol ${INTERCHANGE_PROTOCOL_VERSION}); ` +
    `fix the provider's worker_init (or the install on the nodes) so that blocks run Node ${major(process.version)} and Conduit ${CONDUIT_VERSION}, as the endpoint does`
  );
}

/** The tails of a job's stdout and stderr, one text (a container's output may be in either). */
function jobOutput(status: JobStatus): string {
  return [status.stdoutPath, status.stderrPath].map((path) => (path ? readTail(path) : "")).join("\n");
}

/** Unix socket paths are at most 107 bytes (sun_path): a longer run folder is refused with the fix. */
async function listenUnix(interchange: Interchange, path: string): Promise<void> {
  if (Buffer.byteLength(path) > 107) {
    throw new Error(
      `the interchange's Unix socket for containerized blocks, ${path}, is ${Buffer.byteLength(path)} bytes long, more than the 107 a Unix socket path may have; use an endpoint folder with a shorter path`,
    );
  }
  await interchange.listenUnix(path);
}
