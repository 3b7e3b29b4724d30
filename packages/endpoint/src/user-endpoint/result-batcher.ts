/**
 * Batches results into {@link ResultBatchMessage}s, adaptively: when no batch
 * is in flight, what arrived in this tick is sent at once (a lone result waits
 * for nothing); while one is in flight, results pile up and the next batch
 * takes them all (up to `maxBatch` results or `maxBytes` of payload; a single
 * bigger result goes alone). One batch is in flight at a time, so under load
 * the broker sees one persistent, confirmed message per round trip instead of
 * one per task.
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
  private readonly maxBatch: number;
  private readonly maxBytes: number;

  constructor(private readonly options: ResultBatcherOptions) {
    this.maxBatch = options.maxBatch ?? 500;
    this.maxBytes = options.maxBytes ?? 1024 * 1024;
  }

  /** Queues one result; resolves once the broker confirmed the batch that carried it. */
  add(result: ResultMessage): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ result, bytes: payloadSize(result), resolve, reject });
      if (!this.sending && !this.scheduled) {
        // Wait for the rest of this tick: results the engine hands over together go together.
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          void this.drain();
        });
      }
    });
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
