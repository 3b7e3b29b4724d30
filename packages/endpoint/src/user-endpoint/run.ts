/**
 * The user endpoint process (UEP): started by the MEP as
 * `conduit-endpoint _start-user-endpoint <uep name>` with the bootstrap on
 * stdin. It renders and validates its config (in a short-lived child, see
 * config-child.ts), runs `endpoint_setup`, starts
 * its engine, consumes its task queue until idle, signalled or orphaned, and
 * shuts down cleanly. A UEP that cannot start still connects to the broker and
 * fails every queued task with the reason, so no submitter waits forever.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import {
  type BrokerLink,
  brokerUser,
  type EngineStatusReport,
  HEARTBEATS_EXCHANGE,
  type HeartbeatMessage,
  heartbeatsRoutingKey,
  isAccountRefused,
  redactUrl,
  toWireError,
  uepName as uepNameOf,
  uepTaskQueue,
  type WireError,
} from "@conduit/protocol/wire";
import { RENDERED_CONFIG_SOURCE } from "../config/defaults.js";
import type { UserEndpointConfig } from "../config/user-endpoint-config.js";
import type { Engine } from "../engines/engine-types.js";
import { HA_ENGINE_REFUSAL, highAssuranceProblem } from "../engines/high-assurance.js";
import { createEngine } from "../engines/registry.js";
import { SerializerAllowlist } from "../engines/serializer-allowlist.js";
import { ConfigError, UepStartError } from "../errors.js";
import { createLogger, type Logger, withLogDebug } from "../logging.js";
import { withModulesDir } from "../worker/bundled-code.js";
import { withResultSizeLimit } from "../worker/execute-task.js";
import { UEP_EXIT, type UepBootstrap } from "./bootstrap-types.js";
import { type ConfigChild, startConfigChild } from "./config-child.js";
import { IdleTracker } from "./idle-tracker.js";
import { watchParent } from "./parent-watch.js";
import { parseBootstrap, readBootstrapLine } from "./read-bootstrap.js";
import { runShellHook } from "./shell-hook.js";
import { clearStartFailure, writeStartFailure } from "./start-failure.js";
import { STATUS_FILE, STATUS_FILE_PERIOD_MS, toUepStatus, writeUepStatus } from "./status-file.js";
import { TaskAudit } from "./task-audit.js";
import { TaskConsumer } from "./task-consumer.js";

/**
 * Cold-start timing marks, in ms since this process started (performance's
 * time origin): where a new UEP spends its time before its first result.
 * Logged at DEBUG once the first result is forwarded (or the start fails).
 */
const coldStart: [string, number][] = [["entry modules loaded", performance.now()]];
function mark(what: string): void {
  coldStart.push([what, performance.now()]);
}
function coldStartLine(): string {
  const marks = coldStart.map(([what, at]) => `${what} ${at.toFixed(0)}`).join(", ");
  return `${marks} (process start at epoch ms ${performance.timeOrigin.toFixed(0)})`;
}

export interface RunUserEndpointOptions {
  /** Carries the bootstrap line, then stays open for as long as the MEP lives. */
  stdin: NodeJS.ReadableStream;
  /** `uep.<endpoint id>.<uep id>`, from the command line. */
  uepName: string;
  /** `CONDUIT_USER_DIR`; the UEP's directory is `<userDir>/<uepName>`. */
  userDir: string;
  /** A config child the entry started before loading this module; one is started at render otherwise. */
  configChild?: ConfigChild;
}

/** Exit code for a UEP that refused its bootstrap (nothing else happened). */
const EXIT_REFUSED = 1;
/** Exit code for a UEP that started but lost the broker. */
const EXIT_BROKER_LOST = 1;
/** Exit code for a UEP that could not write a task record to the audit log. */
const EXIT_AUDIT_FAILED = 1;
/** How long running tasks may finish at shutdown; the rest go back to the queue. */
const GRACE_MS: Record<StopReason, number> = {
  signal: 3000,
  parent: 500,
  idle: 3000,
  // No task or result moved for the whole hard limit: what runs is stuck, and fails.
  idleHard: 0,
  broker: 0,
  queue: 3000,
  account: 0,
  audit: 0,
};
/** A failed UEP drains its queue until no task arrived for this long. */
const DRAIN_QUIET_MS = 1000;
/** Longest wait for the broker at shutdown (cancel the consumer, confirm the last heartbeat). */
const BROKER_WAIT_MS = 2000;
const UEP_NAME = /^uep\.[A-Za-z0-9-]+\.[A-Za-z0-9-]+$/;

/**
 * `account`: the broker refused this UEP's account at a reconnect (deleted with its identity).
 * `idleHard`: idle_heartbeats_hard beats without a task or result moving.
 * `audit`: a task record could not be written to the audit log (fail closed).
 */
type StopReason = "signal" | "parent" | "idle" | "idleHard" | "broker" | "queue" | "account" | "audit";

/** Runs a UEP to the end; resolves with its exit code (see UEP_EXIT). */
export async function runUserEndpoint(options: RunUserEndpointOptions): Promise<number> {
  let bootstrap: UepBootstrap;
  let stdinEnded: boolean;
  try {
    const first = await readBootstrapLine(options.stdin);
    bootstrap = parseBootstrap(first.line);
    stdinEnded = first.ended;
    mark("bootstrap read");
  } catch (err) {
    // No log file yet: the UEP's stderr is its log when the MEP started it.
    process.stderr.write(`${(err as Error).message}\n`);
    return EXIT_REFUSED;
  }
  const refusal = checkBootstrap(bootstrap, options.uepName);
  if (refusal) {
    process.stderr.write(`${refusal}\n`);
    return EXIT_REFUSED;
  }
  const uep = new UserEndpoint(bootstrap, join(options.userDir, bootstrap.uepName), options.configChild);
  return uep.run(options.stdin, stdinEnded);
}

function checkBootstrap(bootstrap: UepBootstrap, uepName: string): string | undefined {
  if (bootstrap.uepName !== uepName || uepNameOf(bootstrap.endpointId, bootstrap.uepId) !== uepName) {
    return `The endpoint information on stdin is for ${bootstrap.uepName}, not ${uepName}; refusing to start (the endpoint manager must pass the same name on the command line).`;
  }
  if (!UEP_NAME.test(uepName)) {
    return `${uepName} is not a user endpoint name (uep.<endpoint id>.<uep id>); refusing to start.`;
  }
  if (process.ppid !== bootstrap.mepPid) {
    return `Pid ${bootstrap.mepPid} not parent; refusing to start (this process's parent is pid ${process.ppid}; only the endpoint manager may start a user endpoint; a conduit-endpoint wrapper script on the PATH must end with 'exec … "$@"' so that it keeps the manager's child pid).`;
  }
  return undefined;
}

/** What a started UEP runs with. */
interface Started {
  config: UserEndpointConfig;
  engine: Engine;
  consumer: TaskConsumer;
  idle: IdleTracker;
}

class UserEndpoint {
  private readonly log: Logger;
  private debug = false;
  private readonly stop = new AbortController();
  private stopReason: StopReason | undefined;
  /** Set once endpoint_setup succeeded (or there was none): teardown runs at exit. */
  private teardown: string | undefined;
  private readonly queue: string;
  /** High-Assurance with an audit log: where task records go. */
  private audit: TaskAudit | undefined;

  constructor(
    private readonly bootstrap: UepBootstrap,
    private readonly dir: string,
    private readonly configChild?: ConfigChild,
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // A reason left by an earlier run of this UEP must not be read as this run's.
    clearStartFailure(dir);
    // DEBUG lines are filtered here rather than by the logger: `debug` is known only once the config is rendered.
    // Checked every second too: its workers and their tasks print to the same file.
    const file = createLogger({
      file: join(dir, "endpoint.log"),
      name: `UEP ${bootstrap.uepName}`,
      fields: { uep: bootstrap.uepName, endpoint_id: bootstrap.endpointId },
      debug: true,
      checkEveryMs: 1000,
    });
    this.log = { ...file, debug: (m, fields) => this.debug && file.debug(m, fields) };
    this.queue = uepTaskQueue(bootstrap.endpointId, bootstrap.uepId);
  }

  async run(stdin: NodeJS.ReadableStream, stdinEnded: boolean): Promise<number> {
    const { log, bootstrap } = this;
    process.title = `conduit UEP ${bootstrap.uepName}`;
    log.info(
      `========== User endpoint begins: ${bootstrap.uepName} (pid ${process.pid}, endpoint manager pid ${bootstrap.mepPid}, identity ${bootstrap.identity.username})`,
    );
    const onSignal = (signal: NodeJS.Signals): void => {
      log.info(`Received ${signal}; shutting down`);
      this.requestStop("signal");
    };
    const signals: NodeJS.Signals[] = ["SIGTERM", "SIGINT", "SIGQUIT"];
    for (const s of signals) process.on(s, onSignal);
    if (bootstrap.auditFd != null) {
      try {
        this.audit = TaskAudit.toDescriptor(bootstrap.auditFd, (message) => {
          log.error(message);
          this.requestStop("audit");
        });
      } catch (err) {
        log.error((err as Error).message);
        for (const s of signals) process.removeListener(s, onSignal);
        return EXIT_REFUSED;
      }
    }
    const stopWatching = watchParent({
      stdin,
      stdinEnded,
      parentPid: bootstrap.mepPid,
      onGone: () => {
        log.warn(`Parent (${bootstrap.mepPid}) has gone away; initiating shut down`);
        this.requestStop("parent");
      },
    });
    try {
      let started: Started;
      try {
        started = await this.start();
      } catch (err) {
        return await this.failStart(err);
      }
      return await this.serve(started);
    } finally {
      stopWatching();
      for (const s of signals) process.removeListener(s, onSignal);
      log.info(`---------- User endpoint ends: ${bootstrap.uepName}`);
    }
  }

  private requestStop(reason: StopReason): void {
    if (this.stop.signal.aborted) return;
    this.stopReason = reason;
    this.stop.abort();
  }

  /** Render, validate, endpoint_setup, engine: anything thrown here is a start failure. */
  private async start(): Promise<Started> {
    const { bootstrap, log } = this;
    const { template } = bootstrap;
    if ("error" in template) {
      throw new UepStartError(
        template.error ||
          "The endpoint manager could not read the user config template; ask the endpoint's administrator to check it.",
      );
    }
    // Security: this is the first use of the template and the user's variables, and it happens here,
    // in the UEP's own child (unprivileged in multi-user mode), never in the MEP.
    const reply = await (this.configChild ?? startConfigChild()).render({
      template,
      schema: bootstrap.schema,
      userConfig: bootstrap.userConfig,
      userRuntime: bootstrap.userRuntime,
      parentConfig: bootstrap.parentConfig,
      mappedIdentity: bootstrap.mappedIdentity,
    });
    if (reply.rendered !== undefined && reply.debug) this.logConfig(reply.rendered);
    if (reply.config === undefined) throw new ConfigError(reply.error ?? "The user config template did not render.");
    const { config } = reply;
    this.debug = config.debug === true;
    mark("config rendered and validated");
    const haProblem = bootstrap.parentConfig.high_assurance === true ? highAssuranceProblem(config.engine) : undefined;
    if (haProblem !== undefined) {
      log.error(`Engine configuration is not High Assurance compliant: ${haProblem}`);
      throw new UepStartError(HA_ENGINE_REFUSAL);
    }
    // Every config error is found before endpoint_setup runs, so a bad config has no side effects.
    const engine = createEngine(config.engine, "engine", RENDERED_CONFIG_SOURCE);
    const serializers = SerializerAllowlist.fromEngineConfig(config.engine);
    mark("engine created");
    if (config.endpoint_setup) {
      await runShellHook("endpoint_setup", config.endpoint_setup, { log, env: process.env, signal: this.stop.signal });
      mark("endpoint_setup done");
    }
    this.teardown = config.endpoint_teardown ?? undefined;
    const allowedFunctions = bootstrap.allowedFunctions ?? config.allowed_functions ?? null;
    let firstTask = true;
    let firstResult = true;
    const idle = new IdleTracker({
      softLimit: config.idle_heartbeats_soft,
      hardLimit: config.idle_heartbeats_hard,
      periodS: config.heartbeat_period,
      log,
    });
    const consumer = new TaskConsumer({
      endpointId: bootstrap.endpointId,
      uepId: bootstrap.uepId,
      queue: this.queue,
      serviceUser: bootstrap.serviceUser,
      policy: { engine, allowedFunctions, serializers },
      log,
      dir: this.dir,
      capacity: () => engineCapacity(engine),
      audit: this.audit,
      onTask: () => {
        if (firstTask) {
          firstTask = false;
          mark("first task received");
        }
        idle.taskReceived();
      },
      onResult: () => {
        if (firstResult) {
          firstResult = false;
          mark("first result forwarded");
          log.debug(`Cold start, ms since this process started: ${coldStartLine()}`);
        }
        idle.resultForwarded();
      },
      onCancelled: () => this.requestStop("queue"),
    });
    try {
      await engine.start({
        runDir: this.dir,
        log,
        env: withLogDebug(
          withResultSizeLimit(withModulesDir(process.env, config.engine.modules_dir), config.engine.result_size_limit),
          this.debug,
        ),
        onResult: (r) => consumer.onEngineResult(r),
        onStarted: (taskIds, placement) => consumer.onEngineStarted(taskIds, placement),
      });
    } catch (err) {
      await engine.shutdown().catch(() => undefined);
      throw err;
    }
    mark("engine started");
    return { config, engine, consumer, idle };
  }

  /** With `debug: true`, the rendered config goes to the log between the seed's sentinel lines. */
  private logConfig(rendered: string): void {
    const text = rendered.replace(/\n$/, "");
    this.debug = true;
    this.log.debug(
      `Begin Conduit endpoint configuration (${text.split("\n").length} lines):\n${text}\nEnd Conduit endpoint configuration`,
    );
  }

  private async serve(started: Started): Promise<number> {
    const { bootstrap, log, stop } = this;
    const { config, engine, consumer, idle } = started;
    let link: BrokerLink | undefined;
    let timer: NodeJS.Timeout | undefined;
    let statusTimer: NodeJS.Timeout | undefined;
    let tasksLeft = 0;
    try {
      if (!stop.signal.aborted) {
        const workers = engine.status().totalWorkers;
        // The first consumer's prefetch; it follows the engine's capacity from then on (TaskConsumer.pace).
        const prefetch = engineCapacity(engine);
        try {
          link = await consumer.connect(bootstrap.amqpUrl, { name: bootstrap.uepName, prefetch });
          mark("broker connected, consuming");
        } catch (err) {
          log.error((err as Error).message);
          this.stopReason = "broker";
          return EXIT_BROKER_LOST;
        }
        link.on("disconnect", (err: Error) => log.warn(`Lost the broker connection (${err.message}); reconnecting`));
        link.on("failed", (err: Error) => {
          if (isAccountRefused(err)) {
            log.error(
              `The broker no longer accepts this user endpoint's account ${brokerUser(bootstrap.amqpUrl)} (it was deleted, e.g. by conduit-service user remove); the user endpoint stops.`,
            );
            this.requestStop("account");
            return;
          }
          log.error(`Lost the broker at ${redactUrl(bootstrap.amqpUrl)} for good (${err.message}); shutting down`);
          this.requestStop("broker");
        });
        log.info(`Consuming ${this.queue} (engine ${engine.type}, ${workers} workers, prefetch ${prefetch})`);
        const period = config.heartbeat_period;
        const engineStatus = (): EngineStatusReport => {
          const { type, totalWorkers, idleWorkers, pendingTasks, blocks } = engine.status();
          return { type, totalWorkers, idleWorkers, pendingTasks, ...(blocks === undefined ? {} : { blocks }) };
        };
        this.heartbeat(link, period, { engine: engineStatus() });
        timer = setInterval(
          () => {
            this.heartbeat(link!, period, { engine: engineStatus() });
            const limit = idle.beat();
            if (limit) this.requestStop(limit === "hard" ? "idleHard" : "idle");
          },
          Math.max(period * 1000, 100),
        );
        // Only for a MEP that serves metrics: it reads this file when scraped.
        if (typeof bootstrap.parentConfig.metrics_port === "number") {
          statusTimer = setInterval(() => this.writeStatus(engine), STATUS_FILE_PERIOD_MS);
          this.writeStatus(engine);
        }
        await aborted(stop.signal);
      }
    } finally {
      if (timer) clearInterval(timer);
      if (statusTimer) clearInterval(statusTimer);
      tasksLeft = await this.shutdown(engine, consumer, link);
    }
    if (this.stopReason === "account") return UEP_EXIT.accountRefused;
    if (this.stopReason === "idleHard" && tasksLeft > 0) {
      // Not a crash: the MEP does not restart this UEP, and fails what it left with this reason.
      const beats = config.idle_heartbeats_hard;
      writeStartFailure(
        this.dir,
        `The user endpoint stopped at its idle_heartbeats_hard limit (${beats} heartbeats of ${config.heartbeat_period} s, ${beats * config.heartbeat_period} s without a task or result moving) with this task unfinished; if tasks may run that long without a result, raise idle_heartbeats_hard in the endpoint's user config template.`,
        this.log,
      );
      return UEP_EXIT.idleHardLimit;
    }
    if (this.stopReason === "audit") return EXIT_AUDIT_FAILED;
    return this.stopReason === "broker" ? EXIT_BROKER_LOST : UEP_EXIT.ok;
  }

  /** Resolves with the number of tasks left unfinished (running here or still queued). */
  private async shutdown(engine: Engine, consumer: TaskConsumer, link: BrokerLink | undefined): Promise<number> {
    const { log } = this;
    const reason = this.stopReason ?? "signal";
    log.info(`Shutting down (${reason})`);
    // Bounded: with the broker unreachable, cancelling the consumer would wait for a reconnect.
    await withTimeout(consumer.stopConsuming(), BROKER_WAIT_MS);
    if (consumer.outstanding > 0 && GRACE_MS[reason] > 0) {
      log.info(`Waiting up to ${GRACE_MS[reason]} ms for ${consumer.outstanding} running task(s)`);
      await consumer.waitForRunning(GRACE_MS[reason]);
    }
    if (consumer.outstanding > 0) {
      log.info(`${consumer.outstanding} task(s) still running go back to the queue for the next user endpoint`);
    }
    consumer.dropResults();
    await engine.shutdown().catch((err: Error) => log.error(`Engine shutdown failed: ${err.message}`));
    let tasksLeft = consumer.outstanding;
    if (link) {
      // The service keeps the account of a UEP that leaves tasks behind: the next
      // manager starts this UEP again with the same URL (after a crash, from ueps.json).
      const waiting = await withTimeout(link.checkQueue(this.queue), BROKER_WAIT_MS).catch(() => undefined);
      tasksLeft += waiting?.messageCount ?? 0;
      // Every batch this UEP held was acked and none waits: no record of finished tasks is needed any more.
      if (waiting !== undefined && tasksLeft === 0) consumer.clearJournal();
      await withTimeout(this.heartbeat(link, 0, { tasksLeft }), BROKER_WAIT_MS);
      // Bounded: the account's deletion (on that heartbeat) may close the connection under us.
      await withTimeout(link.close(), BROKER_WAIT_MS);
    }
    await this.runTeardown();
    return tasksLeft;
  }

  /**
   * The UEP could not start: fail every task in the queue with the reason
   * until it stays empty, then tell the service (a heartbeat carrying the error).
   */
  private async failStart(err: unknown): Promise<number> {
    const { bootstrap, log } = this;
    const reason = err instanceof Error ? err.message : String(err);
    log.error(`User endpoint could not start: ${reason}`);
    log.debug(`Start failed; ms since this process started: ${coldStartLine()}`);
    const startError = toWireError(new UepStartError(reason));
    if (!this.stop.signal.aborted) {
      let failed = 0;
      const consumer = new TaskConsumer({
        endpointId: bootstrap.endpointId,
        uepId: bootstrap.uepId,
        queue: this.queue,
        serviceUser: bootstrap.serviceUser,
        policy: { startError },
        log,
        dir: this.dir,
        audit: this.audit,
        onResult: () => failed++,
      });
      let link: BrokerLink | undefined;
      try {
        link = await consumer.connect(bootstrap.amqpUrl, { name: bootstrap.uepName, prefetch: 100 });
      } catch (connectErr) {
        log.error((connectErr as Error).message);
      }
      if (link) {
        await consumer.waitForQuiet(DRAIN_QUIET_MS, this.stop.signal);
        await withTimeout(consumer.stopConsuming(), BROKER_WAIT_MS);
        log.info(`Failed ${failed} queued task(s) with that reason`);
        // Order matters: on this last heartbeat the service deletes this UEP's broker account,
        // which closes the connection; sent before the queue is drained, it cut the drain short.
        await withTimeout(this.heartbeat(link, 0, { error: startError }), BROKER_WAIT_MS);
        // Bounded: the account's deletion (on that heartbeat) may close the connection under us.
        await withTimeout(link.close(), BROKER_WAIT_MS);
      }
    }
    // Tasks that arrive after the drain (or all of them, without a broker) are the MEP's to fail: it reads the reason here.
    writeStartFailure(this.dir, reason, log);
    await this.runTeardown();
    // Stopped before the queue was drained: the tasks are still there, so this is not a reported start failure.
    return this.stop.signal.aborted ? UEP_EXIT.ok : UEP_EXIT.startFailed;
  }

  /** Writes status.json for the MEP's metrics; never throws (a missed write only logs). */
  private writeStatus(engine: Engine): void {
    try {
      writeUepStatus(this.dir, toUepStatus(engine.status()));
    } catch (err) {
      this.log.debug(`Could not write ${STATUS_FILE}: ${(err as Error).message}`);
    }
  }

  /** Publishes a heartbeat; never throws (a lost heartbeat is only logged). */
  private heartbeat(
    link: BrokerLink,
    period: number,
    extra: { error?: WireError; tasksLeft?: number; engine?: EngineStatusReport } = {},
  ): Promise<void> {
    const { error, tasksLeft, engine } = extra;
    const { endpointId, uepId } = this.bootstrap;
    const message: HeartbeatMessage = {
      v: 1,
      kind: "heartbeat",
      role: "uep",
      endpointId,
      uepId,
      period,
      sentAt: Date.now(),
    };
    if (error) message.error = error;
    if (tasksLeft) message.tasksLeft = tasksLeft;
    if (engine) message.engine = engine;
    // The link stamps user-id (checked by RabbitMQ against this connection's user),
    // which proves to the service that a heartbeat comes from this UEP's own account.
    return link
      .publish(HEARTBEATS_EXCHANGE, heartbeatsRoutingKey(endpointId), message)
      .catch((err: Error) => this.log.warn(`Could not send a heartbeat: ${err.message}`));
  }

  private async runTeardown(): Promise<void> {
    if (!this.teardown) return;
    try {
      await runShellHook("endpoint_teardown", this.teardown, { log: this.log, env: process.env });
    } catch (err) {
      this.log.error((err as Error).message);
    }
  }
}

/**
 * How many tasks the engine can take now, which sizes the UEP's prefetch: one
 * per worker running, one more per worker waiting for it (held here, where a
 * `cancel` still drops it), and what the engine's blocks prefetch beyond that
 * (`prefetch_capacity` each); at most 1000, and at least 4: a high-throughput
 * engine with no block yet must see tasks to start one, and a UEP of one worker
 * holding its running and its waiting task must still take the `cancel` behind
 * them (a cancel reaches a UEP only while it takes messages).
 */
function engineCapacity(engine: Engine): number {
  const { totalWorkers, prefetchCapacity = 0 } = engine.status();
  return Math.min(Math.max(2 * totalWorkers + prefetchCapacity, 4), 1000);
}

function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
