/**
 * Failed sign-ins per key (an account, an address) within a sliding window:
 * past the limit, further attempts are refused until the oldest failure ages
 * out. In memory, per replica: a replica set multiplies the limit by its size.
 */
export class FailureLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly maxKeys = 100_000,
  ) {}

  /** 0 when `key` may try now, else how long until it may. */
  retryAfterMs(key: string): number {
    const recent = this.recent(key);
    return recent.length < this.limit ? 0 : recent[0] + this.windowMs - Date.now();
  }

  fail(key: string): void {
    const recent = this.recent(key);
    recent.push(Date.now());
    this.failures.delete(key);
    if (this.failures.size >= this.maxKeys) {
      const oldest = this.failures.keys().next().value;
      if (oldest !== undefined) this.failures.delete(oldest);
    }
    this.failures.set(key, recent.slice(-this.limit));
  }

  clear(key: string): void {
    this.failures.delete(key);
  }

  private recent(key: string): number[] {
    const since = Date.now() - this.windowMs;
    return (this.failures.get(key) ?? []).filter((t) => t > since);
  }
}
