/**
 * Batches results into {@link ResultBatchMessage}s, adaptively: when no batch
 * is in flight, what arrived in this tick is sent at once (a lone result waits
 * for nothing); while one is in flight, results pile up and the next batch
 * takes them all (up to `maxBatch` results or `maxBytes` of payload; a single
 * bigger result goes alone). One batch is in flight at a time, so under load
 * the broker sees one persistent, confirmed message per round trip instead of
 * one per task.
 *
 * A confirm comes back in well under a millisecond, faster than a busy engine
 * hands over its next results, so that alone left batches of 1–2 results (the
 * broker counted 0.72 result messages per task in a 10,000-task burst). While
 * results stream in (the previous one came less than `streamGapMs` ago), a
 * batch therefore waits `lingerMs` for company; a result after a pause goes at
 * once, so a lone task's round trip never waits.
 */
import type { ResultMessage } from "@conduit/protocol/wire";

export interface ResultBatcherOptions {
  /**
   * Publishes one batch and resolves once the broker confirmed it; a rejection
   * fails every result of the batch (their tasks stay unacked).
   */
  send(results: ResultMessage[]): Promise<void>;
  /** @default 500 */
  maxBatch?: number;
  /** Payload bytes (result data and error text) per batch. @default 1 MiB */
  maxBytes?: number;
  /** Results closer together than this (ms) are a stream, whose batches linger. @default 2 */
  streamGapMs?: number;
  /** How long a streaming batch waits for more results before it goes (ms). @default 2 */
  lingerMs?: number;
}

interface Entry {
  result: ResultMessage;
  bytes: number;
  resolve(): void;
  reject(err: Error): void;
}

export class ResultBatcher {
  private queue: Entry[] = [];
  private sending = false;
  private scheduled = false;
  private lingering: NodeJS.Timeout | undefined;
  /** When the last result arrived (performance.now()), to tell a stream from a lone result. */
  private lastArrival = Number.NEGATIVE_INFINITY;
  private readonly maxBatch: number;
  private readonly maxBytes: number;
  private readonly streamGapMs: number;
  private readonly lingerMs: number;

  constructor(private readonly options: ResultBatcherOptions) {
    this.maxBatch = options.maxBatch ?? 500;
    this.maxBytes = options.maxBytes ?? 1024 * 1024;
    this.streamGapMs = options.streamGapMs ?? 2;
    this.lingerMs = options.lingerMs ?? 2;
  }

  /** Queues one result; resolves once the broker confirmed the batch that carried it. */
  add(result: ResultMessage): Promise<void> {
    const now = performance.now();
    const streaming = now - this.lastArrival < this.streamGapMs;
    this.lastArrival = now;
    return new Promise((resolve, reject) => {
      this.queue.push({ result, bytes: payloadSize(result), resolve, reject });
      if (this.sending) return;
      if (this.queue.length >= this.maxBatch) {
        // Full: no reason to wait any longer.
        this.cancelLinger();
        this.schedule(false);
      } else if (!this.scheduled) this.schedule(streaming);
    });
  }

  /**
   * Drains soon: after this tick (results the engine hands over together go
   * together), or after the linger while results stream in.
   */
  private schedule(linger: boolean): void {
    if (this.scheduled && !linger && this.lingering === undefined) return;
    this.scheduled = true;
    const fire = () => {
      this.lingering = undefined;
      this.scheduled = false;
      void this.drain();
    };
    if (linger) this.lingering = setTimeout(fire, this.lingerMs);
    else setImmediate(fire);
  }

  private cancelLinger(): void {
    if (this.lingering === undefined) return;
    clearTimeout(this.lingering);
    this.lingering = undefined;
    this.scheduled = false;
  }

  private async drain(): Promise<void> {
    if (this.sending) return;
    this.sending = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.take();
        try {
          await this.options.send(batch.map((e) => e.result));
          for (const e of batch) e.resolve();
        } catch (err) {
          for (const e of batch) e.reject(err as Error);
        }
      }
    } finally {
      this.sending = false;
    }
  }

  /** The next batch: at least one result, then more while under both caps. */
  private take(): Entry[] {
    let count = 1;
    let bytes = this.queue[0]?.bytes ?? 0;
    while (count < this.queue.length && count < this.maxBatch) {
      const next = this.queue[count] as Entry;
      if (bytes + next.bytes > this.maxBytes) break;
      bytes += next.bytes;
      count++;
    }
    return this.queue.splice(0, count);
  }
}

/** Rough size of what a result carries (its payload or error text); the envelope is small. */
function payloadSize(result: ResultMessage): number {
  let bytes = 200;
  if (result.result) bytes += result.result.data.length + result.result.strategy.length;
  if (result.error) bytes += JSON.stringify(result.error).length;
  return bytes;
}
