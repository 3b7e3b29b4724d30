/**
 * HighThroughputEngine scaling with LocalProvider blocks: the first task
 * starts a block, load adds blocks up to max_blocks, idle blocks go down to
 * min_blocks, and blocks that cannot start fail the waiting tasks (with
 * their stderr) instead of hanging.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { EngineConfig } from "../src/engines/engine-types.js";
import { EngineHarness, expectGone, resultValue } from "./engines.harness.js";
import { localBlocks } from "./engines.high-throughput.helpers.js";

/** Waits for `gate`, then returns the pid of its block manager. */
const BLOCK_OF_TASK = `async (gate) => {
  const fs = process.getBuiltinModule("node:fs");
  while (!fs.existsSync(gate)) await new Promise((r) => setTimeout(r, 20));
  return process.ppid;
}`;

function hte(provider: Record<string, unknown>, jobStatus?: Record<string, unknown>): EngineConfig {
  return localBlocks({}, provider, jobStatus);
}

let h: EngineHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe("HighThroughputEngine scaling", () => {
  it("starts no block until the first task when init_blocks and min_blocks are 0", async () => {
    h = await EngineHarness.start(hte({ init_blocks: 0, min_blocks: 0, max_blocks: 1 }));
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(h.engine.status()).toMatchObject({ blocks: 0, totalWorkers: 0 });
    expect(await h.run("() => 'first'")).toBe("first");
    expect(h.engine.status()).toMatchObject({ blocks: 1, totalWorkers: 1 });
  });

  it("adds blocks up to max_blocks under load, and removes idle ones down to min_blocks", async () => {
    h = await EngineHarness.start(hte({ init_blocks: 1, min_blocks: 1, max_blocks: 3 }, { max_idletime: 0.5 }));
    const gate = join(h.runDir, "gate");
    const tasks = Array.from(
      { length: 5 },
      () => h?.submit(BLOCK_OF_TASK, [gate]) as ReturnType<EngineHarness["submit"]>,
    );
    await expect
      .poll(() => h?.engine.status(), { timeout: 20_000 })
      .toMatchObject({
        blocks: 3,
        totalWorkers: 3,
        idleWorkers: 0,
        pendingTasks: 2,
        outstandingTasks: 5,
      });
    writeFileSync(gate, "");
    const blockManagers = new Set((await Promise.all(tasks)).map((r) => resultValue(r) as number));
    expect(blockManagers.size).toBe(3);
    await expect.poll(() => h?.engine.status(), { timeout: 20_000 }).toMatchObject({ blocks: 1, totalWorkers: 1 });
    const kept = (await h.run("() => process.ppid")) as number;
    expect(blockManagers.has(kept)).toBe(true);
    await expectGone([...blockManagers].filter((pid) => pid !== kept));
    expect(h.logs.filter((line) => /Block \d+ was idle for \d+ s; shutting it down/.test(line))).toHaveLength(2);
  });

  it("fails waiting tasks with the stderr of a block whose worker_init exits", async () => {
    h = await EngineHarness.start(
      hte({ init_blocks: 0, max_blocks: 1, worker_init: "echo 'conda: environment xyz not found' >&2\nexit 3" }),
    );
    const results = await Promise.all([h.submit("() => 1"), h.submit("() => 2")]);
    for (const result of results) {
      expect(result).toMatchObject({ ok: false, error: { code: "BLOCK_START_FAILED", name: "BlockStartError" } });
      if (result.ok) continue;
      expect(result.error.message).toMatch(
        /^Blocks failed to start 3 times in a row \(the last, block 2: job \d+ exited with code 3 before its block manager registered\); fix worker_init or the provider settings in the endpoint config\. Its submit script: .*submit_scripts\/block-2\.\d+\.sh\.\nLast lines of its stderr \(.*submit_scripts\/block-2\.\d+\.stderr\):\nconda: environment xyz not found$/,
      );
    }
    h.expectOneResultEach();
  });

  it("fails waiting tasks when worker_init runs a missing command, and tries again for a new task", async () => {
    h = await EngineHarness.start(hte({ init_blocks: 1, max_blocks: 2, worker_init: "no_such_cmd_conduit --setup" }));
    const first = await h.submit("() => 1");
    expect(first).toMatchObject({ ok: false, error: { code: "BLOCK_START_FAILED" } });
    if (!first.ok) {
      expect(first.error.message).toContain("exited with code 127 before its block manager registered");
      expect(first.error.message).toMatch(/no_such_cmd_conduit: (command )?not found/);
      expect(first.error.message).toContain("worker_init failed with exit status 127");
    }
    const again = await h.submit("() => 2");
    expect(again).toMatchObject({ ok: false, error: { code: "BLOCK_START_FAILED" } });
    expect(h.engine.status()).toMatchObject({ blocks: 0, outstandingTasks: 0 });
  });
});
