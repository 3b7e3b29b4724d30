/**
 * Deletes the scoped broker accounts nobody needs any more:
 * - a UEP's, at its last heartbeat (`period: 0`), unless this process handed
 *   its URL out again after that heartbeat was sent (the same UEP id is
 *   starting again); and once its heartbeats are missing for 3 periods (a UEP
 *   that died without a last heartbeat);
 * - a task group's, once the group had no submit for the result retention
 *   (its result queue has expired by then too); at start and hourly.
 * The next hand-out makes a deleted account again, with the same derived
 * password.
 */
import { type HeartbeatMessage, taskGroupBrokerUser, uepBrokerUser } from "@conduit/protocol";
import type { FastifyBaseLogger } from "fastify";
import type { Store } from "../store/store.js";
import type { BrokerAccounts } from "./broker-accounts.js";

/** Told of every UEP heartbeat, before the store records it. */
export interface UepHeartbeatListener {
  /**
   * @param sender the message's `user-id` property, which RabbitMQ checks
   * against the publishing connection's user: only the UEP's own account can
   * end it (any endpoint account may publish heartbeats).
   */
  uepHeartbeat(beat: HeartbeatMessage & { uepId: string }, sender?: string): Promise<void>;
}

export interface BrokerAccountSweeperOptions {
  /** Task-group accounts are deleted after this long without a submit to the group, in ms. */
  resultRetentionMs: number;
  /** Between task group sweeps, in ms. @default 3_600_000 (1 hour) */
  taskGroupSweepMs?: number;
  /** Between looks for UEPs whose heartbeats stopped, in ms. @default 30_000 */
  silentUepCheckMs?: number;
}

/** Heartbeats missing for this many periods: the UEP is gone. */
const MISSED_PERIODS = 3;

export class BrokerAccountSweeper implements UepHeartbeatListener {
  /** Each live UEP this process heard from: its heartbeat period (s) and when it was last heard here. */
  private readonly ueps = new Map<string, { period: number; heardAt: number }>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly running = new Set<Promise<unknown>>();
  private stopped = false;

  constructor(
    private readonly accounts: BrokerAccounts,
    private readonly store: Store,
    private readonly logger: FastifyBaseLogger,
    private readonly options: BrokerAccountSweeperOptions,
  ) {}

  /** Sweeps task groups now and then every {@link BrokerAccountSweeperOptions.taskGroupSweepMs}; checks for silent UEPs. */
  start(): void {
    const every = (ms: number, task: () => Promise<unknown>, what: string) => {
      const run = () => {
        if (this.stopped) return;
        const work = task()
          .catch((err: unknown) => this.logger.warn({ err }, `Broker account sweep (${what}) failed; it runs again.`))
          .finally(() => this.running.delete(work));
        this.running.add(work);
      };
      this.timers.push(setInterval(run, ms).unref());
      return run;
    };
    every(this.options.taskGroupSweepMs ?? 3_600_000, () => this.sweepTaskGroups(), "task groups")();
    every(this.options.silentUepCheckMs ?? 30_000, () => this.deleteSilentUeps(), "silent UEPs");
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers.splice(0)) clearInterval(timer);
    await Promise.all(this.running);
  }

  async uepHeartbeat(beat: HeartbeatMessage & { uepId: string }, sender?: string): Promise<void> {
    if (beat.period > 0) {
      this.ueps.set(beat.uepId, { period: beat.period, heardAt: Date.now() });
      return;
    }
    if (sender !== uepBrokerUser(beat.uepId)) {
      this.logger.warn(
        `Ignored a last heartbeat for UEP ${beat.uepId} not sent by its own broker account (user-id ${sender ?? "absent"}); its account stays until its heartbeats stop.`,
      );
      return;
    }
    if ((beat.tasksLeft ?? 0) > 0) {
      // A manager that died left this UEP's tasks queued; the next one starts the
      // UEP again with the URL it was given, so its account must still work then.
      this.logger.info(
        `UEP ${beat.uepId} stopped with ${beat.tasksLeft} task(s) left in its queue; its broker account stays for the user endpoint that takes them.`,
      );
      this.ueps.delete(beat.uepId);
      return;
    }
    if (await this.accounts.uepStopped(beat.uepId, beat.sentAt)) {
      this.logger.info(`Deleted the broker account of UEP ${beat.uepId}, which stopped.`);
    }
    // Only now: had the deletion failed, the silent-UEP check would still find it.
    this.ueps.delete(beat.uepId);
  }

  /** Deletes the accounts of UEPs heard from whose heartbeats (on any replica) stopped; returns how many. */
  async deleteSilentUeps(): Promise<number> {
    if (this.ueps.size === 0) return 0;
    // Other replicas take some of the heartbeats: the store's last_seen counts them all.
    const ages = await this.store.uepHeartbeatAges([...this.ueps.keys()]);
    let deleted = 0;
    for (const [uepId, { period }] of [...this.ueps]) {
      const limitMs = MISSED_PERIODS * period * 1000;
      const age = ages.get(uepId);
      if (age === null || (age !== undefined && age * 1000 <= limitMs)) continue;
      // Heard here since the store was read, or handed out lately (a UEP starting again has not beaten yet).
      const heardAt = this.ueps.get(uepId)?.heardAt ?? Number.NEGATIVE_INFINITY;
      const handedOut = this.accounts.uepHandedOutAt(uepId) ?? Number.NEGATIVE_INFINITY;
      if (Date.now() - Math.max(heardAt, handedOut) <= limitMs) continue;
      this.ueps.delete(uepId);
      if (await this.accounts.uepStopped(uepId, Date.now())) {
        deleted++;
        this.logger.info(`Deleted the broker account of UEP ${uepId}: no heartbeat for ${MISSED_PERIODS} periods.`);
      }
    }
    return deleted;
  }

  /** Deletes the accounts of task groups (on this vhost) without a submit for the retention; returns how many. */
  async sweepTaskGroups(): Promise<number> {
    const prefix = taskGroupBrokerUser("");
    const users = await this.accounts.usersWithPrefix(prefix);
    const groups = users.map((u) => u.slice(prefix.length));
    const recent = await this.store.recentTaskGroups(
      groups.filter((g) => /^[0-9a-f-]{36}$/.test(g)),
      this.options.resultRetentionMs,
    );
    let deleted = 0;
    for (const group of groups) {
      if (recent.has(group) || this.accounts.taskGroupHandedOutWithin(group, this.options.resultRetentionMs)) continue;
      await this.accounts.deleteTaskGroupAccount(group);
      deleted++;
    }
    if (deleted > 0)
      this.logger.info(`Deleted the broker accounts of ${deleted} task group(s) unused for the retention.`);
    return deleted;
  }
}
