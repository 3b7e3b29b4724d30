/**
 * The manager endpoint process (MEP): consumes its command queue, starts one
 * UEP per `start_uep` command (unless that UEP is already running), restarts a
 * UEP that died with tasks still queued (bounded), heartbeats to the service,
 * and on shutdown stops every UEP before it says goodbye.
 */

import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  BadMessageError,
  type BrokerLink,
  brokerUser,
  type ConfirmChannel,
  type ConsumeMessage,
  checkExchanges,
  commandQueue,
  commandQueueSpec,
  connectBroker,
  declareExchanges,
  declareQueue,
  decodeMessage,
  endpointBrokerUser,
  HEARTBEATS_EXCHANGE,
  type HeartbeatMessage,
  heartbeatsRoutingKey,
  isAccountRefused,
  RESULTS_EXCHANGE,
  RefusedSenders,
  type ResultMessage,
  redactUrl,
  resultsRoutingKey,
  type StartUepCommand,
  senderOf,
  toWireError,
  uepName,
  uepTaskQueueSpec,
  type WireError,
} from "@conduit/protocol";
import type { ManagerConfig } from "../config/manager-config.js";
import type { MappedIdentity } from "../config/render.js";
import { UepError, UepStartError } from "../errors.js";
import type { IdentityMapper } from "../identity-mapping/identity-mapper.js";
import { type LocalUser, lookupLocalUser } from "../identity-mapping/local-user.js";
import type { Logger } from "../logging.js";
import { UEP_EXIT } from "../user-endpoint/bootstrap-types.js";
import { readStartFailure } from "../user-endpoint/start-failure.js";
import { UepCgroups } from "./cgroups.js";
import type { EndpointPaths } from "./endpoint-dir.js";
import { buildBootstrap } from "./uep-bootstrap.js";
import { type UepExit, UepProcess } from "./uep-process.js";
import { removeUepRecords, writeUepRecords } from "./uep-records.js";

export interface ManagerEndpointOptions {
  name: string;
  ep: EndpointPaths;
  config: ManagerConfig;
  endpointId: string;
  /** Broker URL (credentials included, `amqp_port` applied); UEPs get the same. */
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
  log: Logger;
  /**
   * Commands of the UEPs a crashed MEP left behind (from its `ueps.json`,
   * killed before this MEP began): each one whose queue still holds tasks is
   * started again, since no new command would announce those tasks.
   */
  leftoverUeps?: readonly StartUepCommand[];
  /**
   * Called with the one sentence (already logged) when the broker refuses the
   * MEP's own account at a reconnect: it was deleted, so the MEP must stop
   * instead of reconnecting forever. @default nothing
   */
  onAccountRefused?: (message: string) => void;
}

/** Commands older than this (or from a clock this far ahead) are ignored, as in Globus. */
const MAX_COMMAND_AGE_MS = 180_000;
/** A UEP's unacked tasks go back to its queue when its connection drops; look only after that. */
const RESTART_CHECK_DELAY_MS = 1_000;
/** At most this many automatic restarts of one UEP per {@link RESTART_WINDOW_MS}. */
const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 60_000;
/** How long UEPs get to stop after SIGTERM before their process groups are killed. */
const UEP_STOP_GRACE_MS = 10_000;

interface UepEntry {
  /** The latest command for this UEP: what a restart starts it with. */
  command: StartUepCommand;
  process: UepProcess | undefined;
  /** Times of automatic restarts, for the restart budget. */
  restarts: number[];
  /** Multi-user: the account the UEP runs as. */
  user: LocalUser | undefined;
}

export class ManagerEndpoint {
  private broker: BrokerLink | undefined;
  private consumer: { channel: ConfirmChannel; tag: string } | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private heartbeatPending = false;
  private readonly ueps = new Map<string, UepEntry>();
  /** Multi-user: UEPs whose identity is being mapped (a repeated command waits for that). */
  private readonly mapping = new Set<string>();
  private stopping = false;
  private readonly log: Logger;
  private readonly refused: RefusedSenders;
  /** A root MEP's cgroups, one per UEP (undefined when this MEP cannot make them). */
  private cgroups: UepCgroups | undefined;
  /** UEPs whose leftover processes are being ended; shutdown waits for them. */
  private readonly endingTrees = new Set<Promise<void>>();

  constructor(private readonly options: ManagerEndpointOptions) {
    this.log = options.log;
    this.refused = new RefusedSenders((line) => options.log.warn(line));
  }

  /** Connects, consumes the command queue and starts heartbeating. */
  async start(): Promise<void> {
    const { name, amqpUrl, config } = this.options;
    this.cgroups = UepCgroups.detect(this.options.endpointId, this.log);
    this.broker = await connectBroker(amqpUrl, {
      name: `MEP ${name}`,
      // Fail `start` fast when RabbitMQ is not there; once running, reconnect forever.
      initialMaxRetries: 3,
      setup: (channel) => this.setup(channel),
    });
    this.broker.on("disconnect", (err: Error) =>
      this.log.warn(`Lost the connection to RabbitMQ (${err?.message ?? "closed"}); reconnecting`),
    );
    // Listeners are attached after the first connection: every "connect" from now on is a reconnection.
    this.broker.on("connect", () => this.log.info("Reconnected to RabbitMQ"));
    this.broker.on("channel-error", (err: Error) => this.log.warn(`RabbitMQ channel error: ${err.message}`));
    this.broker.on("failed", (err: Error) => {
      if (!isAccountRefused(err)) {
        this.log.error(`Lost the connection to RabbitMQ for good (${err.message})`);
        return;
      }
      const message = `The broker no longer accepts this endpoint's account ${brokerUser(amqpUrl)} (it was deleted, e.g. by conduit-service user remove); the endpoint stops: register it again with conduit-endpoint start.`;
      this.log.error(message);
      this.options.onAccountRefused?.(message);
    });
    const period = config.heartbeat_period;
    this.sendHeartbeat(period);
    this.heartbeatTimer = setInterval(() => this.sendHeartbeat(period), period * 1000);
    void this.resumeLeftovers(this.options.leftoverUeps ?? []);
  }

  /** Starts again each UEP a crashed MEP left with tasks in its queue (see `leftoverUeps`). */
  private async resumeLeftovers(commands: readonly StartUepCommand[]): Promise<void> {
    if (commands.length === 0) return;
    // Tasks the killed UEPs had not acked go back to their queues when their connections drop.
    await sleep(RESTART_CHECK_DELAY_MS);
    for (const command of commands) {
      if (this.stopping) return;
      try {
        // The records file is this endpoint's own, but checked like a command from the broker.
        this.checkCommand(decodeMessage(JSON.stringify(command), "start_uep"));
      } catch (err) {
        this.log.warn(`Ignoring a user endpoint left by the previous instance: ${(err as Error).message}`);
        continue;
      }
      if (this.ueps.get(command.uepName)?.process?.running) continue;
      const waiting = await this.queuedTasks(command);
      if (!waiting) continue;
      this.log.info(
        `User endpoint ${command.uepName} was left with ${waiting} task(s) in its queue by the previous instance; starting it again`,
      );
      this.startUep(command);
    }
  }

  /** Runs on every (re)connection: topology, then the command consumer. */
  private async setup(channel: ConfirmChannel): Promise<void> {
    const own = commandQueueSpec(this.options.endpointId);
    const queue = own.name;
    // From the protocol's topology table, with the service's arguments, so that
    // publishing a heartbeat or a failed result never closes the channel with a 404.
    if (this.scopedAccount()) {
      // A scoped account may not configure shared names or bind to conduit.tasks
      // (that would let it route other endpoints' commands to itself): it only
      // checks the exchanges; the service declared and bound the queue at registration.
      await checkExchanges(channel);
      await channel.assertQueue(queue, own.options);
    } else {
      // --shared-broker-account: the only case where an endpoint declares.
      await declareExchanges(channel);
      await declareQueue(channel, own);
    }
    if (this.stopping) return;
    const { consumerTag } = await channel.consume(queue, (msg) => this.onCommand(channel, msg));
    this.consumer = { channel, tag: consumerTag };
    this.log.debug(`Consuming commands from ${queue}`);
  }

  /** True when the service handed out this endpoint's own RabbitMQ account (not `--shared-broker-account`). */
  private scopedAccount(): boolean {
    return brokerUser(this.options.amqpUrl) === endpointBrokerUser(this.options.endpointId);
  }

  private onCommand(channel: ConfirmChannel, msg: ConsumeMessage | null): void {
    if (msg === null) {
      this.log.warn(
        `RabbitMQ cancelled the command consumer (queue ${commandQueue(this.options.endpointId)} deleted?)`,
      );
      return;
    }
    // Acked on receipt, as in Globus: a command that crashes the MEP must not come back forever.
    try {
      channel.ack(msg);
    } catch {
      // channel already closed: the broker redelivers, and starting a running UEP is a no-op
    }
    // Only the service may start a UEP: user-id is checked by RabbitMQ, the body by nobody.
    const sender = senderOf(msg);
    if (sender !== this.options.serviceUser) {
      this.refused.refuse(
        sender,
        `a command on ${commandQueue(this.options.endpointId)}: only ${this.options.serviceUser} may send one`,
      );
      return;
    }
    let command: StartUepCommand;
    try {
      command = decodeMessage(msg.content, "start_uep");
      this.checkCommand(command);
    } catch (err) {
      this.log.error(`Dropped a command: ${(err as Error).message}`);
      return;
    }
    // The UEP's broker URL carries a password: never logged.
    const shown = command.amqpUrl
      ? JSON.stringify({ ...command, amqpUrl: redactUrl(command.amqpUrl) })
      : msg.content.toString("utf8");
    this.log.debug(`Received command: ${shown}`);
    const now = Date.now();
    if (Math.abs(now - command.sentAt) > MAX_COMMAND_AGE_MS) {
      this.log.warn(
        "Ignoring command from server\nCommand too old or skew between system clocks is too large.\n" +
          `  Command timestamp: ${new Date(command.sentAt).toISOString()}\n` +
          `  Endpoint timestamp: ${new Date(now).toISOString()}`,
      );
      return;
    }
    this.startUep(command);
  }

  /**
   * Throws unless the command is for this endpoint and its UEP name is the one
   * derived from the ids (decodeMessage checked its shape).
   */
  private checkCommand(c: StartUepCommand): void {
    const { endpointId } = this.options;
    const bad = (problem: string) => new Error(`malformed start_uep command: ${problem}.`);
    if (c.endpointId !== endpointId) throw bad(`it is for endpoint ${c.endpointId}, not ${endpointId}`);
    // The name becomes a directory name: it must be exactly the one derived from the ids.
    if (c.uepName !== uepName(endpointId, c.uepId)) throw bad(`its uepName is not ${uepName(endpointId, c.uepId)}`);
  }

  private startUep(command: StartUepCommand): void {
    if (this.stopping) return;
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
    void this.mapIdentity(command)
      .then((user) => {
        if (user === null || this.stopping) return;
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
  private async mapIdentity(command: StartUepCommand): Promise<LocalUser | null> {
    const mapper = this.options.identityMapper as IdentityMapper;
    const { id, username } = command.identity;
    const refuse = async (message: string): Promise<null> => {
      this.log.error(message);
      await this.failQueuedTasks(command, toWireError(new UepError("IDENTITY_NOT_MAPPED", message)));
      return null;
    };
    let mapped: Awaited<ReturnType<IdentityMapper["map"]>>;
    try {
      mapped = await mapper.map(command.identity);
    } catch (err) {
      const e = err as Error;
      return await refuse(
        `Identity failed to map to a local user name.  (${e.name}) ${e.message}\n  Conduit effective identity: ${id}\n  Conduit username: ${username}`,
      );
    }
    if (mapped === null) {
      return await refuse(
        `Identity failed to map to a local user name.  (LookupError) \n  Conduit effective identity: ${id}\n  Conduit username: ${username}`,
      );
    }
    const rule = mapped.ruleIndex === undefined ? "" : `, rule ${mapped.ruleIndex + 1}`;
    const how = `identity mapper ${mapped.mapperIndex + 1} (${mapped.dataType}${rule})`;
    const user = lookupLocalUser(mapped.username);
    if (user === null) {
      return await refuse(
        `Identity mapped to a local user name, but local user does not exist.\n  Local user name: ${mapped.username}\n  Conduit effective identity: ${id}\n  Mapped by: ${how}`,
      );
    }
    if (!this.options.config.allow_privileged_user_mapping) {
      const mepUid = process.getuid?.();
      if (user.uid === mepUid) {
        return await refuse(
          `Requested UID is same as Manager Endpoint UID on a user-mapped Manager Endpoint; refusing to start a user endpoint as ${user.uname} (uid ${user.uid}).\n  Conduit effective identity: ${id}\n  Mapped by: ${how}\n  Fix the identity mapping, or set allow_privileged_user_mapping: true in ${this.options.ep.config}.`,
        );
      }
      if (user.uid === 0) {
        return await refuse(
          `Requested UID is root (uid 0); refusing to start a user endpoint as ${user.uname} on a user-mapped Manager Endpoint.\n  Conduit effective identity: ${id}\n  Mapped by: ${how}\n  Fix the identity mapping, or set allow_privileged_user_mapping: true in ${this.options.ep.config}.`,
        );
      }
    }
    this.log.info(`Identity ${id} mapped to local user ${user.uname} (uid ${user.uid}) by ${how}`);
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
      });
    } catch (err) {
      this.log.error(`Unable to start user endpoint process for ${localUser} ${describe}: ${(err as Error).message}`);
      const error = new UepStartError(
        `The endpoint could not start a user endpoint process (${(err as Error).message}); ask the endpoint's administrator to check ${this.options.ep.log}.`,
      );
      void this.failQueuedTasks(command, toWireError(error));
      this.forget(entry);
      return;
    }
    entry.process = proc;
    this.saveRecords();
    this.log.info(`Creating new user endpoint (pid: ${proc.pid}) ${describe}`);
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
    if (this.stopping) return;
    this.saveRecords();
    if (exit.code === UEP_EXIT.accountRefused) {
      this.log.error(
        `User endpoint ${proc.name} stopped: the broker no longer accepts its account ${brokerUser(entry.command.amqpUrl ?? this.options.amqpUrl)} (it was deleted, e.g. by conduit-service user remove); not restarting it.`,
      );
      this.forget(entry);
      return;
    }
    if (exit.code === UEP_EXIT.startFailed) {
      this.log.info(
        `User endpoint ${proc.name} could not start; not restarting it (it failed its tasks with the reason)`,
      );
      this.forget(entry);
      await this.failLeftAfterStartFailure(entry, proc);
      return;
    }

    await sleep(RESTART_CHECK_DELAY_MS);
    if (this.stopping || entry.process?.running || this.ueps.get(proc.name) !== entry) return;
    const waiting = await this.queuedTasks(entry.command);
    if (!waiting) {
      this.forget(entry);
      return;
    }
    const how = exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
    const now = Date.now();
    entry.restarts = entry.restarts.filter((t) => now - t < RESTART_WINDOW_MS);
    if (entry.restarts.length >= MAX_RESTARTS) {
      this.log.error(
        `User endpoint ${proc.name} stopped (${how}) ${MAX_RESTARTS + 1} times within a minute; failing the ${waiting} task(s) in its queue instead of restarting it (see ${proc.logFile})`,
      );
      const error = new UepError(
        "UEP_CRASHED",
        `The user endpoint process running this task stopped (${how}) ${MAX_RESTARTS + 1} times within a minute, so the task was failed instead of run again; its log is ${proc.logFile} on the endpoint host.`,
      );
      await this.failQueuedTasks(entry.command, toWireError(error));
      this.forget(entry);
      return;
    }
    entry.restarts.push(now);
    this.log.info(
      `User endpoint ${proc.name} stopped (${how}) with ${waiting} task(s) in its queue; starting it again`,
    );
    this.launch(entry.command, entry.restarts, entry.user);
  }

  /**
   * A UEP that could not start fails the tasks it finds; those it could not
   * reach (it lost the broker, or they came after its drain) are failed here,
   * with the reason it left (see start-failure.ts).
   */
  private async failLeftAfterStartFailure(entry: UepEntry, proc: UepProcess): Promise<void> {
    if (this.ueps.get(proc.name)?.process?.running) return;
    const waiting = await this.queuedTasks(entry.command);
    if (!waiting || this.stopping || this.ueps.get(proc.name)?.process?.running) return;
    const uid = entry.user?.uid ?? process.getuid?.() ?? -1;
    const reason =
      readStartFailure(dirname(proc.logFile), uid) ??
      `The user endpoint could not start and left no reason; its log is ${proc.logFile} on the endpoint host.`;
    this.log.warn(`User endpoint ${proc.name} could not start and left ${waiting} task(s) in its queue; failing them`);
    await this.failQueuedTasks(entry.command, toWireError(new UepStartError(reason)));
  }

  /** Drops a stopped UEP's entry (unless a newer command replaced or restarted it meanwhile). */
  private forget(entry: UepEntry): void {
    const name = entry.command.uepName;
    if (this.ueps.get(name) === entry && !entry.process?.running) this.ueps.delete(name);
  }

  /** Ready messages in the UEP's task queue, or 0 when the broker cannot tell right now. */
  private async queuedTasks(command: StartUepCommand): Promise<number> {
    try {
      const channel = await this.readyChannel();
      // assertQueue, not checkQueue: a missing queue must not close the shared channel with a 404.
      const queue = uepTaskQueueSpec(command.endpointId, command.uepId);
      const { messageCount } = await channel.assertQueue(queue.name, queue.options);
      return messageCount;
    } catch (err) {
      this.log.warn(`Could not check the task queue of ${command.uepName}: ${(err as Error).message}`);
      return 0;
    }
  }

  /**
   * Takes every task out of the UEP's queue and publishes a failed result for
   * it; each task is acked only after its result is confirmed by the broker.
   */
  private async failQueuedTasks(command: StartUepCommand, error: WireError): Promise<void> {
    const { endpointId } = this.options;
    const spec = uepTaskQueueSpec(endpointId, command.uepId);
    const queue = spec.name;
    let failed = 0;
    try {
      const channel = await this.readyChannel();
      await channel.assertQueue(queue, spec.options);
      for (;;) {
        const msg = await channel.get(queue, { noAck: false });
        if (msg === false) break;
        let taskId: string;
        // A task the service did not send is not failed in its name (this account may report every task here).
        const sender = senderOf(msg);
        if (sender !== this.options.serviceUser) {
          this.refused.refuse(sender, `a message in ${queue}: only ${this.options.serviceUser} may send tasks`);
          channel.ack(msg);
          continue;
        }
        try {
          taskId = decodeMessage(msg.content, "task").taskId;
        } catch (err) {
          // A malformed task whose id is sound is failed all the same: its submitter waits for it.
          const id = err instanceof BadMessageError ? err.details.taskId : undefined;
          if (id === undefined) {
            this.log.error(`Dropped a message from ${queue}: ${(err as Error).message}`);
            channel.ack(msg);
            continue;
          }
          taskId = id;
        }
        const result: ResultMessage = {
          v: 1,
          kind: "result",
          taskId,
          endpointId,
          uepId: command.uepId,
          state: "failed",
          error,
          completedAt: Date.now(),
        };
        await this.broker?.publish(RESULTS_EXCHANGE, resultsRoutingKey(endpointId), result);
        channel.ack(msg);
        failed++;
      }
    } catch (err) {
      this.log.error(`Could not fail the tasks of ${command.uepName}: ${(err as Error).message}`);
    }
    if (failed > 0) this.log.warn(`Failed ${failed} task(s) of ${command.uepName} (${error.code})`);
  }

  private async readyChannel(): Promise<ConfirmChannel> {
    if (!this.broker) throw new Error("The MEP is not connected to RabbitMQ.");
    return await this.broker.ready();
  }

  private sendHeartbeat(period: number): void {
    // One at a time: while the broker is away, beats do not pile up behind each other.
    if (this.heartbeatPending) return;
    this.heartbeatPending = true;
    this.publishHeartbeat(period)
      .catch((err: Error) => this.log.warn(`Could not send a heartbeat: ${err.message}`))
      .finally(() => {
        this.heartbeatPending = false;
      });
  }

  private async publishHeartbeat(period: number): Promise<void> {
    const { endpointId } = this.options;
    if (!this.broker) return;
    const beat: HeartbeatMessage = { v: 1, kind: "heartbeat", role: "mep", endpointId, period, sentAt: Date.now() };
    await this.broker.publish(HEARTBEATS_EXCHANGE, heartbeatsRoutingKey(endpointId), beat);
    this.log.debug(`Heartbeat sent (period ${period} s)`);
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
   * Stops consuming, stops every UEP (SIGTERM to its process group, SIGKILL
   * after the grace period), sends the last heartbeat (period 0) and closes
   * the broker connection.
   */
  async shutdown(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    clearInterval(this.heartbeatTimer);
    // Stop taking commands first, so no UEP starts while the others stop.
    if (this.consumer) {
      await withTimeout(this.consumer.channel.cancel(this.consumer.tag), 3_000).catch(() => undefined);
    }
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
    await withTimeout(this.publishHeartbeat(0), 5_000).catch((err: Error) =>
      this.log.warn(`Could not send the final heartbeat: ${err.message}`),
    );
    await this.broker?.close();
    removeUepRecords(this.options.ep.uepRecords);
  }

  /** Last resort (a second signal during shutdown): kills every UEP process group now. */
  killAll(): void {
    for (const p of this.runningUeps()) p.kill();
    removeUepRecords(this.options.ep.uepRecords);
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
