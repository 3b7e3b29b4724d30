/**
 * HighThroughputEngine with LocalProvider blocks: worker_init reaching the
 * workers, a worker or a whole block dying mid-task, and blocks going away
 * with their UEP (the network side: engines.high-throughput-network.test.ts).
 */
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { EngineHarness, expectGone, hteConfig, PIDS, withUepFixture } from "./engines.harness.js";
import { HANG_FIRST_TIME, markerPids } from "./engines.high-throughput.helpers.js";

let h: EngineHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

type Pids = { pid: number; ppid: number };

describe("HighThroughputEngine", () => {
  it("runs worker_init in the block's shell: its exports reach the tasks", async () => {
    h = await EngineHarness.start(
      hteConfig({}, { worker_init: "export CONDUIT_TEST_INIT='from worker_init'\nexport PATH=\"$PATH\"" }),
    );
    expect(await h.run("() => [process.env.CONDUIT_TEST_INIT, process.env.CONDUIT_BLOCK_ID]")).toEqual([
      "from worker_init",
      "0",
    ]);
  });

  it("fails the task of a worker killed with SIGKILL with WORKER_LOST, and the block replaces the worker", async () => {
    h = await EngineHarness.start(hteConfig());
    const marker = join(h.runDir, "marker");
    const result = h.submit(HANG_FIRST_TIME, [marker]);
    const first = await markerPids(marker);
    process.kill(first.pid, "SIGKILL");
    const lost = await result;
    expect(lost).toMatchObject({ ok: false, error: { code: "WORKER_LOST", name: "WorkerLost" } });
    if (lost.ok) return;
    expect(lost.error.message).toBe(
      `Worker process ${first.pid} was killed by signal SIGKILL while running task ${lost.taskId}; it was not re-run (set max_retries_on_system_failure to re-run tasks whose worker dies).`,
    );
    const next = (await h.run(PIDS)) as Pids;
    expect(next.pid).not.toBe(first.pid);
    expect(next.ppid).toBe(first.ppid);
  });

  it("re-runs the task of a killed worker when max_retries_on_system_failure allows", async () => {
    h = await EngineHarness.start(hteConfig({ max_retries_on_system_failure: 1 }));
    const marker = join(h.runDir, "marker");
    const result = h.submit(HANG_FIRST_TIME, [marker]);
    const first = await markerPids(marker);
    process.kill(first.pid, "SIGKILL");
    const rerun = await result;
    expect(rerun.ok).toBe(true);
    if (rerun.ok) expect((JSON.parse(rerun.value.data) as Pids).pid).not.toBe(first.pid);
  });

  it("fails the tasks of a block manager killed with SIGKILL, and starts a new block for the next task", async () => {
    h = await EngineHarness.start(hteConfig());
    const marker = join(h.runDir, "marker");
    const result = h.submit(HANG_FIRST_TIME, [marker]);
    const first = await markerPids(marker);
    process.kill(first.ppid, "SIGKILL");
    const lost = await result;
    expect(lost).toMatchObject({ ok: false, error: { code: "WORKER_LOST", name: "WorkerLost" } });
    if (lost.ok) return;
    expect(lost.error.message).toMatch(
      new RegExp(
        `^Block 0 \\(block manager pid ${first.ppid} on .*, job ${first.ppid}\\) was lost: its block manager was killed by signal SIGKILL, while running task ${lost.taskId}; it was not re-run`,
      ),
    );
    const next = (await h.run(PIDS)) as Pids;
    expect(next.ppid).not.toBe(first.ppid);
    // The orphaned worker goes too (its IPC channel closed, and the block's process group was swept).
    await expectGone([first.pid, first.ppid]);
  });
});

describe("HighThroughputEngine and its UEP", () => {
  it("its block managers and workers exit when the UEP is killed", async () => {
    await withUepFixture(hteConfig({ max_workers_per_node: 2 }), 2, async ({ child, pids }) => {
      const processes = [...new Set(pids.flatMap((p) => [p.pid, p.ppid]))];
      expect(processes).toHaveLength(3);
      child.kill("SIGKILL");
      await expectGone(processes);
    });
  });
});
