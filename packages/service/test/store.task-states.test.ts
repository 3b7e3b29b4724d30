/**
 * Task states are spelled once, in protocol's TASK_STATES. The store's SQL
 * takes its state lists from it (task-state-sql.ts); this checks the single
 * states its statements still name, and that no statement lists states by hand.
 * (The migrations' check constraint is checked on both backends in
 * store.conformance.test.ts.)
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { TASK_STATES, TERMINAL_TASK_STATES } from "@conduit/protocol";
import { describe, expect, it } from "vitest";
import { NOT_STARTED_STATES, TERMINAL_STATES } from "../src/store/task-state-sql.js";

const STORE_DIR = fileURLToPath(new URL("../src/store/", import.meta.url));

async function storeSources(): Promise<Array<{ file: string; text: string }>> {
  const files = (await readdir(STORE_DIR)).filter((f) => f.endsWith(".ts"));
  return Promise.all(files.map(async (file) => ({ file, text: await readFile(join(STORE_DIR, file), "utf8") })));
}

describe("task states in the store's SQL", () => {
  it("the lists are made from TASK_STATES and TERMINAL_TASK_STATES", () => {
    expect(TERMINAL_STATES).toBe(`(${[...TERMINAL_TASK_STATES].map((s) => `'${s}'`).join(", ")})`);
    expect(NOT_STARTED_STATES).toBe("('received', 'waiting-for-endpoint')");
  });

  it("every state a statement names is one of TASK_STATES", async () => {
    const named = new Set<string>();
    for (const { file, text } of await storeSources()) {
      for (const match of text.matchAll(/state\s*=\s*'([^']*)'/g)) {
        expect(TASK_STATES, `${file} sets or compares state '${match[1]}'`).toContain(match[1]);
        named.add(match[1]);
      }
    }
    // The scan finds the transitions the store makes, so it is not vacuous.
    expect([...named].sort()).toEqual(["cancelled", "failed", "received", "running", "waiting-for-endpoint"]);
  });

  it("no statement lists states by hand", async () => {
    for (const { file, text } of await storeSources()) {
      expect(text, `${file} spells a list of states; use task-state-sql.ts`).not.toMatch(
        /state\s+(NOT\s+)?IN\s*\(\s*'/i,
      );
    }
  });
});
