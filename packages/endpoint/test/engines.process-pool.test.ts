/** ProcessPoolEngine: what happens when a worker process dies, and when the UEP does. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { EngineHarness, expectGone, readOr, withUepFixture } from "./engines.harness.js";

/** Writes its pid to `marker` the first time it runs and then never finishes; later runs return their pid. */
const HANG_FIRST_TIME = `async (marker) => {
  const fs = process.getBuiltinModule("node:fs");
  if (!fs.existsSync(marker)) {
    fs.writeFileSync(marker, String(process.pid));
    await new Promise(() => {});
  }
  return process.pid;
}`;

let h: EngineHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function markerPid(marker: string): Promise<number> {
  await expect.poll(() => readOr(marker), { timeout: 15_000 }).toMatch(/^\d+$/);
  return Number(readFileSync(marker, "utf8"));
}

describe("ProcessPoolEngine worker loss", () => {
  it("fails the task of a worker killed with SIGKILL with WORKER_LOST, and replaces the worker", async () => {
    h = await EngineHarness.start({ type: "ProcessPoolEngine", max_workers: 1 });
    const marker = join(h.runDir, "marker");
    const result = h.submit(HANG_FIRST_TIME, [marker]);
    const pid = await markerPid(marker);
    process.kill(pid, "SIGKILL");
    const lost = await result;
    expect(lost).toMatchObject({ ok: false, error: { code: "WORKER_LOST", name: "WorkerLost" } });
    if (lost.ok) return;
    expect(lost.error.message).toBe(
      `Worker process ${pid} was killed by signal SIGKILL while running task ${lost.taskId}; it was not re-run (set max_retries_on_system_failure to re-run tasks whose worker dies).`,
    );
    const next = (await h.run("() => process.pid")) as number;
    expect(next).not.toBe(pid);
    expect(h.engine.status()).toMatchObject({ totalWorkers: 1, outstandingTasks: 0 });
    expect(h.logs.join("\n")).toContain(`worker process ${pid} was killed by signal SIGKILL`);
  });

  it("re-runs the task when max_retries_on_system_failure allows", async () => {
    h = await EngineHarness.start({ type: "ProcessPoolEngine", max_workers: 1, max_retries_on_system_failure: 1 });
    const marker = join(h.runDir, "marker");
    const result = h.submit(HANG_FIRST_TIME, [marker]);
    const pid = await markerPid(marker);
    process.kill(pid, "SIGKILL");
    const rerun = (await h.run("(x) => x", [0])) as number;
    expect(rerun).toBe(0);
    const value = await result;
    expect(value.ok).toBe(true);
    if (value.ok) expect(JSON.parse(value.value.data)).not.toBe(pid);
  });

  it("gives up after max_retries_on_system_failure re-runs, naming the exit code", async () => {
    h = await EngineHarness.start({ type: "ProcessPoolEngine", max_workers: 2, max_retries_on_system_failure: 1 });
    const result = await h.submit("() => process.exit(9)");
    expect(result).toMatchObject({ ok: false, error: { code: "WORKER_LOST" } });
    if (!result.ok) {
      expect(result.error.message).toMatch(
        new RegExp(`^Worker process \\d+ exited with code 9 while running task ${result.taskId}; it ran 2 times`),
      );
    }
    expect(await h.run("() => 'still working'")).toBe("still working");
    await expect.poll(() => h?.engine.status().totalWorkers).toBe(2);
  });
});

describe("ProcessPoolEngine and its UEP", () => {
  it("its workers exit when the UEP is killed", async () => {
    await withUepFixture({ type: "ProcessPoolEngine", max_workers: 2 }, 2, async ({ child, pids }) => {
      const workers = [...new Set(pids.map((p) => p.pid))];
      expect(workers).toHaveLength(2);
      expect(pids.every((p) => p.ppid === child.pid)).toBe(true);
      child.kill("SIGKILL");
      await expectGone(workers);
    });
  });
});
