/**
 * The finished tasks of each batch this UEP holds, so that a batch given back
 * by a UEP that died is not run again in full by the next UEP of the same queue.
 *
 * A `tasks` message is acked only once all its tasks are settled; until then
 * every task of it whose result the broker confirmed (or that a `cancel`
 * dropped) is appended, one id per line, to `<uep dir>/batch-journal/<key>`,
 * where the key is a hash of the batch's task ids (a redelivered message holds
 * the same ids). The file is removed when the batch is acked. A UEP receiving a
 * redelivered batch reads its file and settles the listed tasks without
 * running them: their results are already with the service.
 *
 * Not fsync'd: a write is in the kernel once `appendFileSync` returns, so a
 * killed UEP (SIGKILL, OOM, crash) loses nothing; only a host crash can lose
 * recent lines, and then those tasks run again, as without a journal (the
 * service stores and forwards only a task's first result). A torn last line
 * is not a task id and is ignored. Appends are coalesced: the ids settled in
 * one turn of the event loop go to each batch's file in one write, and the
 * last task of a batch is never written (the batch is acked instead). A
 * batch's file stays open while the batch is held (at most {@link MAX_OPEN_FILES}
 * at once, the least recently opened closed first), so a write is one system
 * call, not an open, a write and a close: a burst of short tasks writes about
 * once per task.
 */
import { createHash } from "node:crypto";
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../logging.js";

/** The journal's directory inside the UEP's directory. */
export const BATCH_JOURNAL_DIR = "batch-journal";
/** Batch files kept open at once (a UEP holds as many batches as its prefetch, up to 1,000). */
const MAX_OPEN_FILES = 64;

/** The journal key of a batch: a hash of its task ids, in order. */
export function batchKey(taskIds: readonly string[]): string {
  return createHash("sha256").update(taskIds.join("\n")).digest("hex").slice(0, 32);
}

export class BatchJournal {
  private readonly dir: string;
  private made = false;
  /** Ids waiting to be appended, by batch key. */
  private readonly pending = new Map<string, string[]>();
  private flushScheduled = false;
  /** Open files of held batches, by key, the oldest first. */
  private readonly files = new Map<string, number>();

  constructor(
    uepDir: string,
    private readonly log: Logger,
  ) {
    this.dir = join(uepDir, BATCH_JOURNAL_DIR);
  }

  /** The tasks of this batch that an earlier UEP recorded as finished (read on a redelivered batch only). */
  finished(key: string): Set<string> {
    let text: string;
    try {
      text = readFileSync(join(this.dir, key), "utf8");
    } catch {
      return new Set();
    }
    // Only whole lines: a line without its newline was torn by a crash.
    const lines = text.split("\n");
    lines.pop();
    return new Set(lines.filter((line) => line.length > 0));
  }

  /** Records that this task of the batch is settled (written at the end of this turn of the event loop). */
  record(key: string, taskId: string): void {
    const ids = this.pending.get(key);
    if (ids) ids.push(taskId);
    else this.pending.set(key, [taskId]);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  /** The batch was acked: its record is no longer needed. */
  forget(key: string): void {
    this.pending.delete(key);
    this.close(key);
    try {
      unlinkSync(join(this.dir, key));
    } catch {
      // Nothing was recorded for it (or it was removed already).
    }
  }

  /** Removes every record: called when nothing is left in the queue or held here (every batch was acked). */
  clear(): void {
    this.pending.clear();
    for (const key of [...this.files.keys()]) this.close(key);
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return;
    }
    for (const name of names) rmSync(join(this.dir, name), { force: true });
  }

  private flush(): void {
    this.flushScheduled = false;
    for (const [key, ids] of this.pending) {
      try {
        if (!this.made) {
          mkdirSync(this.dir, { recursive: true, mode: 0o700 });
          this.made = true;
        }
        writeSync(this.file(key), `${ids.join("\n")}\n`);
      } catch (err) {
        // Only an optimisation: without the record, these tasks run again after a crash.
        this.log.warn(
          `Could not record ${ids.length} finished task(s) in ${this.dir} (${(err as Error).message}); after a crash they would run again.`,
        );
      }
    }
    this.pending.clear();
  }

  /** The batch's file, opened for appending (O_APPEND: every write lands at its end) on first use. */
  private file(key: string): number {
    const open = this.files.get(key);
    if (open !== undefined) return open;
    if (this.files.size >= MAX_OPEN_FILES) this.close(this.files.keys().next().value as string);
    const fd = openSync(join(this.dir, key), "a", 0o600);
    this.files.set(key, fd);
    return fd;
  }

  private close(key: string): void {
    const fd = this.files.get(key);
    if (fd === undefined) return;
    this.files.delete(key);
    try {
      closeSync(fd);
    } catch {
      // Already closed.
    }
  }
}
