/**
 * What a task leaves behind, and its limits, on the process-based engines,
 * run as an ordinary local user (the kernel exempts root from RLIMIT_NPROC):
 * the processes a task starts (a plain child, and a setsid'd, double-forked
 * one that init inherits) are gone within 5 s of its end, or of its worker's
 * death; EMFILE at max_open_files_per_worker, EAGAIN at max_user_processes; a task that fills
 * its heap fails as WorkerOutOfMemory naming max_memory_per_worker, reported
 * through V8's heap limit (no cgroup here, so never the kernel's OOM killer).
 * Root only: it creates local users with useradd.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { alive, type EngineAsUser, engineAsUser } from "./engines.as-user.helpers.js";
import { createUser, installedCli, type LocalTestUser, removeUsersAndGroups } from "./multi-user.helpers.js";

const isRoot = process.getuid?.() === 0;

/** Starts a plain child and a setsid'd double-forked sleeper (reparented to init); returns their pids. */
const LEAVE_SLEEPERS = `async () => {
  const { spawn, execFileSync } = process.getBuiltinModule("node:child_process");
  const child = spawn("sleep", ["300"], { stdio: "ignore" });
  // The subshell forks, starts sleep in a new session in the background, prints its pid and exits: init inherits it.
  const orphan = Number(execFileSync("/bin/sh", ["-c", "(setsid sleep 300 >/dev/null 2>&1 & echo $!)"], { encoding: "utf8" }).trim());
  const ppid = (pid) => { const s = process.getBuiltinModule("node:fs").readFileSync("/proc/" + pid + "/stat", "utf8"); return Number(s.slice(s.lastIndexOf(")") + 2).split(" ")[1]); };
  return { child: child.pid, orphan, orphanParent: ppid(orphan), worker: process.pid };
}`;

const OPEN_FILES = `() => {
  const fs = process.getBuiltinModule("node:fs");
  const fds = [];
  try {
    for (;;) fds.push(fs.openSync("/dev/null", "r"));
  } catch (err) {
    for (const fd of fds) fs.closeSync(fd);
    return { code: err.code, opened: fds.length };
  }
}`;

const START_PROCESSES = `async () => {
  const { spawn } = process.getBuiltinModule("node:child_process");
  const kids = [];
  for (let i = 0; i < 1000; i++) {
    const child = spawn("sleep", ["60"], { stdio: "ignore" });
    const code = await new Promise((resolve) => {
      child.once("error", (err) => resolve(err.code));
      child.once("spawn", () => resolve(undefined));
    });
    if (code) {
      for (const k of kids) k.kill("SIGKILL");
      return { code, started: kids.length };
    }
    kids.push(child);
  }
  for (const k of kids) k.kill("SIGKILL");
  return { code: null, started: kids.length };
}`;

const FILL_HEAP = `() => {
  const keep = [];
  for (;;) keep.push(new Array(1e5).fill(Math.random()));
}`;

function value<T = Record<string, unknown>>(result: { ok: boolean }): T {
  if (!result.ok) throw new Error(`task failed: ${JSON.stringify(result)}`);
  return JSON.parse((result as unknown as { value: { data: string } }).value.data);
}

const engines: Array<[string, Record<string, unknown>]> = [
  ["ProcessPoolEngine", { type: "ProcessPoolEngine", max_workers: 1 }],
  [
    "HighThroughputEngine",
    { type: "HighThroughputEngine", max_workers_per_node: 1, provider: { type: "LocalProvider", init_blocks: 1 } },
  ],
];

describe.skipIf(!isRoot)("a task's processes and limits, as a local user", () => {
  let cli: string;
  let user: LocalTestUser;
  const open: EngineAsUser[] = [];
  beforeAll(() => {
    cli = installedCli();
    user = createUser();
  }, 300_000);
  // Each engine ends with its test: RLIMIT_NPROC counts every thread of the user's processes, this test's too.
  afterEach(async () => {
    for (const e of open.splice(0)) await e.close();
  });
  afterAll(() => removeUsersAndGroups());

  async function start(config: Record<string, unknown>): Promise<EngineAsUser> {
    const engine = engineAsUser(cli, user, config);
    open.push(engine);
    await engine.started;
    return engine;
  }

  for (const [name, config] of engines) {
    it(`${name}: the processes a task left, setsid'd and double-forked ones included, are gone within 5 s of its end`, async () => {
      const engine = await start(config);
      const pids = value<Record<string, number>>(await engine.run(LEAVE_SLEEPERS));
      // The orphan really left the worker's tree: only the task marker can find it.
      expect(pids.orphanParent).not.toBe(pids.worker);
      await expect.poll(() => alive(pids.child!) || alive(pids.orphan!), { timeout: 5_000, interval: 100 }).toBe(false);
      // The worker itself lives on and runs the next task.
      expect(alive(pids.worker!)).toBe(true);
      expect(value<number>(await engine.run("() => 42"))).toBe(42);
    }, 60_000);

    it(`${name}: the processes of a task whose worker died go with it`, async () => {
      const engine = await start(config);
      const dir = mkdtempSync(join(tmpdir(), "conduit-dying-"));
      chmodSync(dir, 0o777);
      const pidFile = join(dir, "orphan.pid");
      const result = await engine.run(
        `(file) => {
          const { execFileSync } = process.getBuiltinModule("node:child_process");
          const pid = execFileSync("/bin/sh", ["-c", "(setsid sleep 300 >/dev/null 2>&1 & echo $!)"], { encoding: "utf8" });
          process.getBuiltinModule("node:fs").writeFileSync(file, pid);
          process.exit(1);
        }`,
        [pidFile],
      );
      expect(result).toMatchObject({ ok: false, error: { code: "WORKER_LOST" } });
      const orphan = Number(readFileSync(pidFile, "utf8"));
      rmSync(dir, { recursive: true, force: true });
      await expect.poll(() => alive(orphan), { timeout: 5_000, interval: 100 }).toBe(false);
    }, 60_000);

    it(`${name}: EMFILE at max_open_files_per_worker, EAGAIN at max_user_processes`, async () => {
      const engine = await start({ ...config, max_open_files_per_worker: 256, max_user_processes: 80 });
      const files = value<{ code: string; opened: number }>(await engine.run(OPEN_FILES));
      expect(files.code).toBe("EMFILE");
      expect(files.opened).toBeLessThan(256);
      const processes = value<{ code: string; started: number }>(await engine.run(START_PROCESSES));
      expect(processes.code).toBe("EAGAIN");
      expect(processes.started).toBeLessThan(80);
    }, 60_000);

    it(`${name}: a task that fills its heap fails as WorkerOutOfMemory naming max_memory_per_worker`, async () => {
      const engine = await start({ ...config, max_memory_per_worker: 64 });
      const result = await engine.run(FILL_HEAP);
      expect(result.ok).toBe(false);
      const error = (result as { error: { name: string; code: string; message: string } }).error;
      expect(error).toMatchObject({ name: "WorkerOutOfMemory", code: "WORKER_OUT_OF_MEMORY" });
      expect(error.message).toContain("JavaScript heap limit of 64 MiB (engine.max_memory_per_worker)");
      // A replacement worker runs the next task.
      expect(value<number>(await engine.run("() => 42"))).toBe(42);
    }, 120_000);
  }
});
