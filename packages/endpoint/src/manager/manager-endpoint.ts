/**
 * The manager endpoint process (MEP): consumes its command queue, starts one
 * UEP per `start_uep` command (unless that UEP is already running; the UEPs
 * themselves, their restarts and the identity mapping are uep-supervisor.ts's),
 * heartbeats to the service, and on shutdown stops every UEP before it says
 * goodbye. It owns the broker link: the UEP task queues the supervisor asks
 * about are read and failed here.
 */

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
  decodeMessage,
  decodeMessageKeepingGoodResults,
  endpointBrokerUser,
  ensureQueue,
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
  uepName,
  uepTaskQueueSpec,
  type WireError,
} from "@conduit/protocol/wire";
import type { Logger } from "../logging.js";
import type { MepMetricsServer } from "./mep-metrics.js";
import { RESTART_CHECK_DELAY_MS, type UepLaunchOptions, UepSupervisor } from "./uep-supervisor.js";
import { withTimeout } from "./with-timeout.js";

export interface ManagerEndpointOptions extends UepLaunchOptions {
  name: string;
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

export class ManagerEndpoint {
  private broker: BrokerLink | undefined;
  private consumer: { channel: ConfirmChannel; tag: string } | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private heartbeatPending = false;
  private stopping = false;
  private readonly log: Logger;
  private readonly refused: RefusedSenders;
  private readonly ueps: UepSupervisor;
  private metrics: MepMetricsServer | undefined;

  constructor(private readonly options: ManagerEndpointOptions) {
    this.log = options.log;
    this.refused = new RefusedSenders((line) => options.log.warn(line));
    this.ueps = new UepSupervisor({
      ...options,
      queues: {
        queuedMessages: (command) => this.queuedMessages(command),
        failQueuedTasks: (command, error) => this.failQueuedTasks(command, error),
      },
      stopping: () => this.stopping,
    });
  }

  /** Connects, consumes the command queue and starts heartbeating. */
  async start(): Promise<void> {
    const { name, amqpUrl, config } = this.options;
    if (config.metrics_port !== null) {
      // Loaded only here: prom-client would cost every MEP without metrics ~3 MiB for its whole life.
      const { startMepMetricsServer } = await import("./mep-metrics.js");
      this.metrics = await startMepMetricsServer(config.metrics_port, {
        runningUepDirs: () => this.ueps.runningDirs(),
      });
      this.log.info(`Serving metrics on http://127.0.0.1:${this.metrics.port}/metrics`);
    }
    this.ueps.start();
    try {
      this.broker = await connectBroker(amqpUrl, {
        name: `MEP ${name}`,
        // Fail `start` fast when RabbitMQ is not there; once running, reconnect forever.
        initialMaxRetries: 3,
        setup: (channel, link) => this.setup(channel, link),
      });
    } catch (err) {
      await this.metrics?.close();
      throw err;
    }
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
      if (this.ueps.isRunning(command.uepName)) continue;
      const waiting = await this.queuedMessages(command);
      if (!waiting) continue;
      this.log.info(
        `User endpoint ${command.uepName} was left with ${waiting} message(s) in its queue by the previous instance; starting it again`,
      );
      this.ueps.startUep(command);
    }
  }

  /** Runs on every (re)connection: topology, then the command consumer. */
  private async setup(channel: ConfirmChannel, link: BrokerLink): Promise<void> {
    const own = commandQueueSpec(this.options.endpointId);
    const queue = own.name;
    // From the protocol's topology table, with the service's arguments, so that
    // publishing a heartbeat or a failed result never closes the channel with a 404.
    if (this.scopedAccount()) {
      // A scoped account may not configure shared names or bind to conduit.tasks
      // (that would let it route other endpoints' commands to itself): it only
      // checks the exchanges; the service declared and bound the queue at registration.
      // An existing queue is only checked: its type is the service's --amqp-queue-type.
      await checkExchanges(channel);
      await ensureQueue(channel, link, own);
    } else {
      // --shared-broker-account: the only case where an endpoint declares (a queue the service made is kept as it is).
      await declareExchanges(channel);
      await ensureQueue(channel, link, own, true);
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
    const requestId = typeof msg.properties.correlationId === "string" ? msg.properties.correlationId : undefined;
    this.log.debug(`Received command: ${shown}`, {
      reqId: requestId,
      endpoint_id: command.endpointId,
      uep: command.uepName,
    });
    const now = Date.now();
    if (Math.abs(now - command.sentAt) > MAX_COMMAND_AGE_MS) {
      this.log.warn(
        "Ignoring command from server\nCommand too old or skew between system clocks is too large.\n" +
          `  Command timestamp: ${new Date(command.sentAt).toISOString()}\n` +
          `  Endpoint timestamp: ${new Date(now).toISOString()}`,
      );
      return;
    }
    this.ueps.startUep(command);
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

  /** Ready messages in the UEP's task queue, or 0 when the broker cannot tell right now. */
  private async queuedMessages(command: StartUepCommand): Promise<number> {
    try {
      const channel = await this.readyChannel();
      // Checked on a throwaway channel (a missing queue must not close the shared one with a 404), whatever its type.
      return await ensureQueue(channel, this.broker as BrokerLink, uepTaskQueueSpec(command.endpointId, command.uepId));
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
      await ensureQueue(channel, this.broker as BrokerLink, spec);
      for (;;) {
        const msg = await channel.get(queue, { noAck: false });
        if (msg === false) break;
        // A task the service did not send is not failed in its name (this account may report every task here).
        const sender = senderOf(msg);
        if (sender !== this.options.serviceUser) {
          this.refused.refuse(sender, `a message in ${queue}: only ${this.options.serviceUser} may send tasks`);
          channel.ack(msg);
          continue;
        }
        // A malformed task whose id is sound is failed all the same: its submitter waits for it.
        const taskIds: string[] = [];
        try {
          const decoded = decodeMessageKeepingGoodResults(msg.content, ["task", "tasks"], (err) => {
            if (err.details.taskId !== undefined) taskIds.push(err.details.taskId);
          });
          for (const task of decoded.kind === "tasks" ? decoded.tasks : [decoded]) taskIds.push(task.taskId);
        } catch (err) {
          const id = err instanceof BadMessageError ? err.details.taskId : undefined;
          if (id !== undefined) taskIds.push(id);
          else this.log.error(`Dropped a message from ${queue}: ${(err as Error).message}`);
        }
        const results = taskIds.map(
          (taskId): ResultMessage => ({
            v: 1,
            kind: "result",
            taskId,
            endpointId,
            uepId: command.uepId,
            state: "failed",
            error,
            completedAt: Date.now(),
          }),
        );
        // One message for a batch's tasks, acked only after the broker confirmed their results.
        if (results.length > 0) {
          await this.broker?.publish(
            RESULTS_EXCHANGE,
            resultsRoutingKey(endpointId),
            results.length === 1 ? (results[0] as ResultMessage) : { v: 1, kind: "results", results },
          );
        }
        channel.ack(msg);
        failed += results.length;
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
    await this.ueps.stopAll();
    await withTimeout(this.publishHeartbeat(0), 5_000).catch((err: Error) =>
      this.log.warn(`Could not send the final heartbeat: ${err.message}`),
    );
    await this.broker?.close();
    await this.metrics?.close();
    this.ueps.removeRecords();
  }

  /** Last resort (a second signal during shutdown): kills every UEP process group now. */
  killAll(): void {
    this.ueps.killAll();
  }
}
