/**
 * Idle shutdown, counted once per heartbeat as Globus Compute's UEP does
 * (`interchange.py _main_loop`):
 * - any task received or result forwarded since the last beat resets both counters;
 * - `idle_heartbeats_soft` counts beats without movement once some work was
 *   done and nothing is outstanding (the "happy path": the user's batch is done);
 * - the hard counter counts every beat without movement (a UEP that never got
 *   a task, or whose tasks hang), with limit `max(soft + 1, idle_heartbeats_hard)`;
 * - `idle_heartbeats_soft: 0` turns idle shutdown off entirely ("always on").
 */
import type { Logger } from "../logging.js";

/** Which limit stopped the UEP. */
export type IdleStop = "soft" | "hard";

export interface IdleTrackerOptions {
  /** 0 disables idle shutdown. */
  softLimit: number;
  hardLimit: number;
  /** Seconds per beat, for the log lines. */
  periodS: number;
  log: Logger;
}

export class IdleTracker {
  private readonly softLimit: number;
  private readonly hardLimit: number;
  private tasks = 0;
  private results = 0;
  private lastTasks = 0;
  private lastResults = 0;
  private soft = 0;
  private hard = 0;

  constructor(private readonly options: IdleTrackerOptions) {
    this.softLimit = Math.max(0, options.softLimit);
    this.hardLimit = Math.max(this.softLimit + 1, options.hardLimit);
  }

  taskReceived(): void {
    this.tasks += 1;
  }

  resultForwarded(): void {
    this.results += 1;
  }

  /** Call once per heartbeat; returns the limit reached, if the UEP should stop now. */
  beat(): IdleStop | undefined {
    const { tasks, results } = this;
    const moved = tasks !== this.lastTasks || results !== this.lastResults;
    this.options.log.debug(
      `Heartbeat.  Tasks and results forwarded since last heartbeat: ${tasks - this.lastTasks} (T), ${results - this.lastResults} (R)`,
    );
    this.lastTasks = tasks;
    this.lastResults = results;
    if (this.softLimit === 0) return undefined;
    if (moved) {
      if (this.soft > 0 || this.hard > 0) {
        this.options.log.info("Moved to active state (due to tasks processed since last heartbeat).");
      }
      this.soft = 0;
      this.hard = 0;
      return undefined;
    }
    this.hard += 1;
    const period = this.options.periodS;
    if ((tasks > 0 || results > 0) && results >= tasks) {
      this.soft += 1;
      if (this.soft === 1) {
        this.options.log.info(
          `In idle state (due to no task or result movement); shut down in ${(this.softLimit - this.soft) * period}s.  (idle_heartbeats_soft)`,
        );
      }
      if (this.soft >= this.softLimit) {
        this.options.log.info("Idle heartbeats reached.  Shutting down.");
        return "soft";
      }
      return undefined;
    }
    if (this.hard > this.hardLimit) {
      this.options.log.warn("Shutting down due to idle heartbeats HARD limit.");
      return "hard";
    }
    if (this.hard === this.softLimit + 1) {
      this.options.log.info(
        `Possibly idle -- no task or result movement.  Will shut down in ${(this.hardLimit - this.hard) * period}s.  (idle_heartbeats_hard)`,
      );
    }
    return undefined;
  }
}
