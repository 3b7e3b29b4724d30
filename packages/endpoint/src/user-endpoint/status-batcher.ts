/**
 * Batches "task is running" reports: one TaskStatusMessage per few
 * milliseconds (or per `maxBatch` ids), not one message per task, so a burst
 * of thousands of tasks costs the broker and the service a handful of messages.
 */
export interface StatusBatcherOptions {
  /** Sends one batch; it logs its own failures (the report is advisory, a lost batch is not retried). */
  send(taskIds: string[]): Promise<void>;
  /** @default 20 */
  intervalMs?: number;
  /** @default 500 */
  maxBatch?: number;
}

export class StatusBatcher {
  private pending = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private inFlight = new Set<Promise<void>>();
  private readonly intervalMs: number;
  private readonly maxBatch: number;

  constructor(private readonly options: StatusBatcherOptions) {
    this.intervalMs = options.intervalMs ?? 20;
    this.maxBatch = options.maxBatch ?? 500;
  }

  add(taskId: string): void {
    this.pending.add(taskId);
    if (this.pending.size >= this.maxBatch) this.send();
    else this.timer ??= setTimeout(() => this.send(), this.intervalMs);
  }

  /** A task that already has its result needs no "running" report (it would arrive after the result). */
  remove(taskId: string): void {
    this.pending.delete(taskId);
  }

  /** Sends what is pending and waits for every batch sent so far. */
  async flush(): Promise<void> {
    this.send();
    await Promise.all(this.inFlight);
  }

  private send(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.size === 0) return;
    const ids = [...this.pending];
    this.pending.clear();
    const sending = this.options
      .send(ids)
      .catch(() => undefined)
      .finally(() => this.inFlight.delete(sending));
    this.inFlight.add(sending);
  }
}
