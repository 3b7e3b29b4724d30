/** ThreadPoolEngine: a task that ends its thread, and stray errors outside any task. */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { EngineHarness } from "./engines.harness.js";

let h: EngineHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe("ThreadPoolEngine worker loss", () => {
  it("fails the task of a thread that exits with WORKER_LOST, and replaces the thread", async () => {
    h = await EngineHarness.start({ type: "ThreadPoolEngine", max_workers: 2 });
    const result = await h.submit("() => process.exit(7)");
    expect(result).toMatchObject({ ok: false, error: { code: "WORKER_LOST", name: "WorkerLost" } });
    if (!result.ok) {
      expect(result.error.message).toMatch(
        new RegExp(
          `^Worker thread \\d+ \\(pid ${process.pid}\\) exited with code 7 while running task ${result.taskId}; it was not re-run`,
        ),
      );
    }
    await expect.poll(() => h?.engine.status()).toMatchObject({ totalWorkers: 2, idleWorkers: 2 });
    expect(await h.run("() => 'replaced'")).toBe("replaced");
  });

  it("re-runs the task when max_retries_on_system_failure allows", async () => {
    h = await EngineHarness.start({ type: "ThreadPoolEngine", max_workers: 1, max_retries_on_system_failure: 1 });
    const marker = join(h.runDir, "first-run");
    const source = `(marker) => {
      const fs = process.getBuiltinModule("node:fs");
      if (!fs.existsSync(marker)) { fs.writeFileSync(marker, ""); process.exit(1); }
      return "second run";
    }`;
    expect(await h.run(source, [marker])).toBe("second run");
    expect(existsSync(marker)).toBe(true);
    expect(h.logs.some((line) => line.includes("running it again") || line.includes("exited with code 1"))).toBe(true);
  });

  it("keeps a worker whose task left a throwing callback behind", async () => {
    h = await EngineHarness.start({ type: "ThreadPoolEngine", max_workers: 1 });
    expect(await h.run('() => { setTimeout(() => { throw new Error("late"); }, 0); return "returned"; }')).toBe(
      "returned",
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await h.run("() => 'next'")).toBe("next");
    expect(h.engine.status().totalWorkers).toBe(1);
    expect(h.logs.filter((line) => line.includes("WorkerLost") || line.includes("exited"))).toEqual([]);
  });
});
