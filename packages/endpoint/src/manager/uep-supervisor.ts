/**
 * The MEP's UEP processes: starts one per command (in multi-user mode as the
 * local account the identity maps to), records the running ones in
 * `ueps.json`, restarts a UEP that died with tasks still queued (at most
 * {@link MAX_RESTARTS} times a minute, then fails those tasks), fails what a
 * UEP that could not start left, and stops them all at shutdown.
 *
 * The task queues are the MEP's (see {@link UepQueues}): the supervisor only
 * asks how many tasks wait and has them failed.
 */
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { brokerUser, type StartUepCommand, toWireError, type WireError } from "@conduit/protocol/wire";
import type { ManagerConfig } from "../config/manager-config.js";
import type { MappedIdentity } from "../config/render.js";
import { UepError, UepStartError } from "../errors.js";
import type { IdentityMapper } from "../identity-mapping/identity-mapper.js";
import type { LocalUser } from "../identity-mapping/local-user.js";
import { chooseLocalUser } from "../identity-mapping/local-user-policy.js";
import type { Logger } from "../logging.js";
import { UEP_EXIT } from "../user-endpoint/bootstrap-types.js";
import { readStartFailure } from "../user-endpoint/start-failure.js";
import type { AuditLog } from "./audit-log.js";
import { UepCgroups } from "./cgroups.js";
import type { EndpointPaths } from "./endpoint-dir.js";
import { buildBootstrap } from "./uep-bootstrap.js";
import { type UepExit, UepProcess } from "./uep-process.js";
import { removeUepRecords, writeUepRecords } from "./uep-records.js";
import { withTimeout } from "./with-timeout.js";

/** A UEP's unacked tasks go back to its queue when its connection drops; look only after that. */
export const RESTART_CHECK_DELAY_MS = 1_000;
/** At most this many automatic restarts of one UEP per {@link RESTART_WINDOW_MS}. */
const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 60_000;
/** How long UEPs get to stop after SIGTERM before their process groups are killed. */
const UEP_STOP_GRACE_MS = 10_000;

/** What the supervisor needs of a UEP's task queue. */
export interface UepQueues {
  /**
   * Ready messages in the UEP's task queue, or 0 when the broker cannot tell
   * right now. Messages, not tasks: one holds a task or a batch of them, and
   * the broker cannot count what is inside without handing the messages out.
   */
  queuedMessages(command: StartUepCommand): Promise<number>;
  /** Takes every task out of the UEP's queue and publishes a failed result with `error` for it. */
  failQueuedTasks(command: StartUepCommand, error: WireError): Promise<void>;
}

/** What the MEP knows that its UEPs are started with; the MEP's own options extend it. */
export interface UepLaunchOptions {
  ep: EndpointPaths;
  config: ManagerConfig;
  endpointId: string;
  /** Broker URL (credentials included, `amqp_port` applied); UEPs get it unless their command carries their own. */
  amqpUrl: string;
  /**
   * The RabbitMQ user the service publishes as (from the registration): a
   * command or queued task with another `user-id` is dropped, and the UEPs are told it.
   */
  serviceUser: string;
  userDir: string;
  /** Local account the MEP (and, single-user, every UEP) runs as. */
  localUser: string;
  /** Multi-user mode: maps each command's identity to the local account its UEP runs as. */
  identityMapper?: IdentityMapper;
  /** High-Assurance with `audit_log_path`: every UEP sends its task records here. */
  audit?: AuditLog;
  log: Logger;
}

export interface UepSupervisorOptions extends UepLaunchOptions {
  queues: UepQueues;
  /** True once the MEP shuts down: from then on nothing starts or restarts. */
  stopping(): boolean;
}

interface UepEntry {
  /** The latest command for this UEP: what a restart starts it with. */
  command: StartUepCommand;
  process: UepProcess | undefined;
  /** Times of automatic restarts, for the restart budget. */
  restarts: number[];
  /** Multi-user: the account the UEP runs as. */
  user: LocalUser | undefined;
}

export class UepSupervisor {
  private readonly ueps = new Map<string, UepEntry>();
  /** Multi-user: UEPs whose identity is being mapped (a repeated command waits for that). */
  private readonly mapping = new Set<string>();
  /** A root MEP's cgroups, one per UEP (undefined when this MEP cannot make them). */
  private cgroups: UepCgroups | undefined;
  /** UEPs whose leftover processes are being ended; `stopAll` waits for them. */
  private readonly endingTrees = new Set<Promise<void>>();
  private readonly log: Logger;

  constructor(private readonly options: UepSupervisorOptions) {
    this.log = options.log;
  }

  /** Sets up the per-UEP cgroups where this MEP can make them; call before the first `startUep`. */
  start(): void {
    this.cgroups = UepCgroups.detect(this.options.endpointId, this.log);
  }

  /** True while the UEP named `uepName` runs. */
  /** Directories of the UEPs running now (their status.json is there). */
  runningDirs(): string[] {
    return [...this.ueps.values()].flatMap((e) => (e.process?.running ? [dirname(e.process.logFile)] : []));
  }

  isRunning(uepName: string): boolean {
    return this.ueps.get(uepName)?.process?.running === true;
  }

  /** Starts the command's UEP unless it runs already (then a restart uses this command). */
  startUep(command: StartUepCommand): void {
    if (this.options.stopping()) return;
    const entry = this.ueps.get(command.uepName);
    if (entry?.process?.running) {
      this.log.info(`User endpoint ${command.uepName} is already running (pid: ${entry.process.pid})`);
      entry.command = command;
      return;
    }
    if (!this.options.identityMapper) {
      this.launch(command, entry?.restarts ?? [], undefined);
      return;
    }
    if (this.mapping.has(command.uepName)) return;
    this.mapping.add(command.uepName);
    void this.mapIdentity(this.options.identityMapper, command)
      .then((user) => {
        if (user === null || this.options.stopping()) return;
        const current = this.ueps.get(command.uepName);
        if (current?.process?.running) return;
        this.launch(command, current?.restarts ?? [], user);
      })
      .finally(() => this.mapping.delete(command.uepName));
  }

  /**
   * Multi-user: the local account `command.identity` maps to, or null after
   * the refusal was logged and the UEP's queued tasks were failed with it.
   */
  private async mapIdentity(mapper: IdentityMapper, command: StartUepCommand): Promise<LocalUser | null> {
    const decision = await chooseLocalUser(mapper, command.identity, {
      allowPrivileged: this.options.config.allow_privileged_user_mapping,
      configFile: this.options.ep.config,
    });
    if ("refusal" in decision) {
      this.log.error(decision.refusal);
      const error = new UepError("IDENTITY_NOT_MAPPED", decision.refusal);
      await this.options.queues.failQueuedTasks(command, toWireError(error));
      return null;
    }
    const { user, mappedBy } = decision;
    this.log.info(
      `Identity ${command.identity.id} mapped to local user ${user.uname} (uid ${user.uid}) by ${mappedBy}`,
    );
    return user;
  }

  private launch(command: StartUepCommand, restarts: number[], user: LocalUser | undefined): void {
    const { userDir } = this.options;
    const localUser = user?.uname ?? this.options.localUser;
    const entry: UepEntry = { command, process: undefined, restarts, user };
    this.ueps.set(command.uepName, entry);
    const describe = UepProcess.describe(localUser, command.uepName);
    let proc: UepProcess;
    try {
      const mapped: MappedIdentity | null = user ? { local: user, conduit: { id: command.identity.id } } : null;
      const bootstrap = buildBootstrap(this.options, command, mapped);
      proc = UepProcess.spawn({
        bootstrap,
        userDir,
        env: bootstrap.userEnvironment,
        runAs: user,
        cgroups: this.cgroups,
        audit: this.options.audit,
      });
    } catch (err) {
      this.log.error(`Unable to start user endpoint process for ${localUser} ${describe}: ${(err as Error).message}`);
      const error = new UepStartError(
        `The endpoint could not start a user endpoint process (${(err as Error).message}); ask the endpoint's administrator to check ${this.options.ep.log}.`,
      );
      void this.options.queues.failQueuedTasks(command, toWireError(error));
      this.forget(entry);
      return;
    }
    entry.process = proc;
    this.saveRecords();
    for (const warning of proc.program.warnings) this.log.warn(warning);
    this.log.info(`Creating new user endpoint (pid: ${proc.pid}) ${describe}`);
    this.log.info(`User endpoint ${command.uepName} runs ${proc.program.description}`);
    this.log.info(
      `Command process successfully forked for '${localUser}' (Conduit effective identity: ${command.identity.id}).`,
    );
    void proc.exited.then((exit) => this.onUepExit(entry, proc, exit));
  }

  private async onUepExit(entry: UepEntry, proc: UepProcess, exit: UepExit): Promise<void> {
    // First, before anything can start this UEP again: what it left (setsid'd task processes) ends with it.
    const ending = proc
      .endTree()
      .catch((err: Error) => this.log.warn(`Could not end what ${proc.name} left: ${err.message}`));
    this.endingTrees.add(ending);
    void ending.finally(() => this.endingTrees.delete(ending));
    const describe = UepProcess.describe(entry.user?.uname ?? this.options.localUser, proc.name);
    if (exit.signal) this.log.warn(`Command terminated by signal: ${exit.signal} (${proc.pid}) ${describe}`);
    else if (exit.code === 0) this.log.info(`Command stopped normally (${proc.pid}) ${describe}`);
    else this.log.warn(`Command return code: ${exit.code} (${proc.pid}) ${describe}`);
    if (entry.process === proc) entry.process = undefined;
    if (this.options.stopping()) return;
    this.saveRecords();
    if (exit.code === UEP_EXIT.accountRefused) {
      this.log.error(
        `User endpoint ${proc.name} stopped: the broker no longer accepts its account ${brokerUser(entry.command.amqpUrl ?? this.options.amqpUrl)} (it was deleted, e.g. by conduit-service user remove); not restarting it.`,
      );
      this.forget(entry);
      return;
    }
    if (exit.code === UEP_EXIT.idleHardLimit) {
      this.log.info(
        `User endpoint ${proc.name} stopped at its idle_heartbeats_hard limit with tasks unfinished; not restarting it (its tasks fail with the reason)`,
      );
      this.forget(entry);
      await this.failLeftBehind(entry, proc, {
        stopped: "stopped at its idle_heartbeats_hard limit",
        error: (reason) => new UepError("UEP_IDLE_HARD_LIMIT", reason),
      });
      return;
    }
    if (exit.code === UEP_EXIT.startFailed) {
      this.log.info(
        `User endpoint ${proc.name} could not start; not restarting it (it failed its tasks with the reason)`,
      );
      this.forget(entry);
      await this.failLeftBehind(entry, proc, {
        stopped: "could not start",
        error: (reason) => new UepStartError(reason),
      });
      return;
    }

    await sleep(RESTART_CHECK_DELAY_MS);
    if (this.options.stopping() || entry.process?.running || this.ueps.get(proc.name) !== entry) return;
    const waiting = await this.options.queues.queuedMessages(entry.command);
    if (!waiting) {
      this.forget(entry);
      return;
    }
    const how = exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
    const now = Date.now();
    entry.restarts = entry.restarts.filter((t) => now - t < RESTART_WINDOW_MS);
    if (entry.restarts.length >= MAX_RESTARTS) {
      this.log.error(
        `User endpoint ${proc.name} stopped (${how}) ${MAX_RESTARTS + 1} times within a minute; failing the tasks of the ${waiting} message(s) in its queue instead of restarting it (see ${proc.logFile})`,
      );
      const error = new UepError(
        "UEP_CRASHED",
        `The user endpoint process running this task stopped (${how}) ${MAX_RESTARTS + 1} times within a minute, so the task was failed instead of run again; its log is ${proc.logFile} on the endpoint host.`,
      );
      await this.options.queues.failQueuedTasks(entry.command, toWireError(error));
      this.forget(entry);
      return;
    }
    entry.restarts.push(now);
    this.log.info(
      `User endpoint ${proc.name} stopped (${how}) with ${waiting} message(s) in its queue; starting it again`,
    );
    this.launch(entry.command, entry.restarts, entry.user);
  }

  /**
   * A UEP that could not start fails the tasks it finds; those it could not
   * reach (it lost the broker, or they came after its drain) are failed here,
   * with the reason it left (see start-failure.ts). A UEP stopped at its
   * idle_heartbeats_hard limit leaves its unfinished tasks here the same way.
   */
  private async failLeftBehind(
    entry: UepEntry,
    proc: UepProcess,
    how: { stopped: string; error: (reason: string) => Error },
  ): Promise<void> {
    if (this.isRunning(proc.name)) return;
    const waiting = await this.options.queues.queuedMessages(entry.command);
    if (!waiting || this.options.stopping() || this.isRunning(proc.name)) return;
    const uid = entry.user?.uid ?? process.getuid?.() ?? -1;
    const reason =
      readStartFailure(dirname(proc.logFile), uid) ??
      `The user endpoint ${how.stopped} and left no reason; its log is ${proc.logFile} on the endpoint host.`;
    this.log.warn(
      `User endpoint ${proc.name} ${how.stopped} and left ${waiting} message(s) in its queue; failing their tasks`,
    );
    await this.options.queues.failQueuedTasks(entry.command, toWireError(how.error(reason)));
  }

  /** Drops a stopped UEP's entry (unless a newer command replaced or restarted it meanwhile). */
  private forget(entry: UepEntry): void {
    const name = entry.command.uepName;
    if (this.ueps.get(name) === entry && !entry.process?.running) this.ueps.delete(name);
  }

  private saveRecords(): void {
    const records = [...this.ueps.values()]
      .filter((e): e is UepEntry & { process: UepProcess } => e.process?.running === true)
      .map(({ process: p, command }) => ({ name: p.name, pid: p.pid, pgid: p.pgid, command }));
    try {
      writeUepRecords(this.options.ep.uepRecords, records);
    } catch (err) {
      this.log.warn(`Could not record the running user endpoints: ${(err as Error).message}`);
    }
  }

  private runningUeps(): UepProcess[] {
    return [...this.ueps.values()].map((e) => e.process).filter((p): p is UepProcess => p?.running === true);
  }

  /**
   * Stops every UEP (SIGTERM to its process group, SIGKILL after the grace
   * period) and waits, bounded, for what they left to end. Call once
   * `stopping()` is true.
   */
  async stopAll(): Promise<void> {
    const live = this.runningUeps();
    const uid = process.getuid?.() ?? -1;
    const gid = process.getgid?.() ?? -1;
    const { localUser } = this.options;
    for (const p of live) {
      this.log.info(
        `Signaling shutdown of user endpoint (PID: ${p.pid}, PGID: ${p.pgid}, UID: ${uid}, GID: ${gid}, User: ${localUser}) ${UepProcess.describe(localUser, p.name)}`,
      );
      p.terminate();
      p.closeStdin();
    }
    const allExited = Promise.all(live.map((p) => p.exited));
    await withTimeout(allExited, UEP_STOP_GRACE_MS).catch(() => undefined);
    for (const p of live) {
      if (p.running) {
        this.log.warn(
          `Forcibly killing of user endpoint (PID: ${p.pid}, PGID: ${p.pgid}, UID: ${uid}, GID: ${gid}, User: ${localUser}) ${UepProcess.describe(localUser, p.name)}`,
        );
      }
      // Also reaps stragglers of a UEP that exited without stopping its workers.
      p.kill();
    }
    await withTimeout(allExited, 2_000).catch(() => undefined);
    await withTimeout(Promise.all(this.endingTrees), 5_000).catch(() => undefined);
    this.cgroups?.close();
  }

  /** Last resort (a second signal during shutdown): kills every UEP process group now. */
  killAll(): void {
    for (const p of this.runningUeps()) p.kill();
    this.removeRecords();
  }

  /** Removes `ueps.json`: nothing of this MEP is left running. */
  removeRecords(): void {
    removeUepRecords(this.options.ep.uepRecords);
  }
}
