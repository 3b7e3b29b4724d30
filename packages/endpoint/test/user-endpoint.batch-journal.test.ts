/**
 * The UEP's batch journal on its own: what it records reaches the file at the
 * end of the event loop's turn, a torn last line (a crash mid-write) is not
 * read as a task id, forget/clear remove the records, and a batch's later
 * turns append to what its earlier ones wrote, also for more batches than it
 * keeps files open.
 */
import { appendFileSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setImmediate as nextTurn } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLogger } from "../src/logging.js";
import { BATCH_JOURNAL_DIR, BatchJournal, batchKey } from "../src/user-endpoint/batch-journal.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "conduit-batch-journal-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const log = createLogger({ name: "test" });

describe("BatchJournal", () => {
  it("keys a batch by its task ids, in order", () => {
    expect(batchKey(["a", "b"])).toBe(batchKey(["a", "b"]));
    expect(batchKey(["a", "b"])).not.toBe(batchKey(["b", "a"]));
    expect(batchKey(["a", "b"])).toMatch(/^[0-9a-f]{32}$/);
  });

  it("writes what was recorded in one turn, and a later UEP reads it back", async () => {
    const journal = new BatchJournal(dir, log);
    const key = batchKey(["t1", "t2", "t3"]);
    journal.record(key, "t1");
    journal.record(key, "t2");
    expect(existsSync(join(dir, BATCH_JOURNAL_DIR, key))).toBe(false);
    await nextTurn();
    expect([...new BatchJournal(dir, log).finished(key)]).toEqual(["t1", "t2"]);
    expect(new BatchJournal(dir, log).finished(batchKey(["other"])).size).toBe(0);
  });

  it("appends each turn's records to the batch's file, for more batches than it keeps open", async () => {
    const journal = new BatchJournal(dir, log);
    const keys = Array.from({ length: 100 }, (_, i) => batchKey([`batch-${i}`]));
    for (const turn of [1, 2, 3]) {
      for (const key of keys) journal.record(key, `${key}-${turn}`);
      await nextTurn();
    }
    const reader = new BatchJournal(dir, log);
    for (const key of keys) expect([...reader.finished(key)]).toEqual([`${key}-1`, `${key}-2`, `${key}-3`]);
  });

  it("ignores a torn last line", async () => {
    const journal = new BatchJournal(dir, log);
    const key = batchKey(["t1", "t2"]);
    journal.record(key, "t1");
    await nextTurn();
    appendFileSync(join(dir, BATCH_JOURNAL_DIR, key), "t2-half-writ");
    expect([...journal.finished(key)]).toEqual(["t1"]);
  });

  it("forgets an acked batch, also one whose records were not written yet, and clears them all", async () => {
    const journal = new BatchJournal(dir, log);
    const [a, b, c] = [batchKey(["a"]), batchKey(["b"]), batchKey(["c"])];
    journal.record(a, "a1");
    journal.record(b, "b1");
    await nextTurn();
    journal.record(c, "c1");
    journal.forget(a);
    journal.forget(c);
    await nextTurn();
    expect(readdirSync(join(dir, BATCH_JOURNAL_DIR))).toEqual([b]);
    journal.clear();
    expect(readdirSync(join(dir, BATCH_JOURNAL_DIR))).toEqual([]);
  });
});
