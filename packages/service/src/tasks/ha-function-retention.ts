/**
 * The retention job of High-Assurance functions: every hour (and whenever
 * {@link HaFunctionRetention.runOnce} is called) it deletes the HA functions
 * unused (neither registered again nor submitted) for longer than the
 * retention period, on the service's clock, and those whose endpoint was
 * deleted. A submit of one that is due but not deleted yet is refused anyway
 * (TaskSubmitter), so the job's timing decides nothing but the disk space.
 */
import type { FastifyBaseLogger } from "fastify";
import type { Store } from "../store/store.js";
import type { TaskSubmitter } from "./task-submitter.js";

export interface HaFunctionRetentionOptions {
  retentionMs: number;
  /** The service's clock, in ms since the epoch. */
  clock: () => number;
  /** @default one hour */
  everyMs?: number;
}

export class HaFunctionRetention {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<string[]> | undefined;

  constructor(
    private readonly store: Store,
    private readonly submitter: Pick<TaskSubmitter, "forgetFunction">,
    private readonly logger: FastifyBaseLogger,
    private readonly options: HaFunctionRetentionOptions,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      this.runOnce().catch((err: unknown) =>
        this.logger.warn(
          { err },
          "Could not delete the High-Assurance functions past their retention; retrying in an hour.",
        ),
      );
    }, this.options.everyMs ?? 3_600_000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** Deletes what is due now; resolves with the ids deleted. One pass at a time: a second call joins the first. */
  runOnce(): Promise<string[]> {
    this.running ??= this.purge().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async purge(): Promise<string[]> {
    const ids = await this.store.purgeIdleHaFunctions(this.options.clock(), this.options.retentionMs);
    for (const id of ids) this.submitter.forgetFunction(id);
    if (ids.length > 0) {
      const days = Math.round(this.options.retentionMs / 86_400_000);
      this.logger.info(
        { functions: ids },
        `Deleted ${ids.length} High-Assurance functions unused for ${days} days or whose endpoint was deleted.`,
      );
    }
    return ids;
  }
}
