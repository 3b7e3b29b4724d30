/**
 * The cgroup path of a root MEP: a UEP's cgroup holds every process it
 * starts, so a process that double-forked into a new session with an empty
 * environment (which neither the process tree nor a marker finds) still ends
 * with the UEP; the memory cgroup is delegated to the UEP's user, whose
 * workers each get a child cgroup with max_memory_per_worker + 256 MiB, and a
 * worker the kernel stops there fails its task as WorkerOutOfMemory naming
 * that limit. Skipped, naming why, where this MEP cannot make cgroups.
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Logger } from "../src/logging.js";
import { type UepCgroup, UepCgroups } from "../src/manager/cgroups.js";
import { UEP_CGROUP_ENV } from "../src/worker/worker-cgroups.js";
import { alive, type EngineAsUser, engineAsUser } from "./engines.as-user.helpers.js";
import { createUser, installedCli, type LocalTestUser, removeUsersAndGroups } from "./multi-user.helpers.js";

const isRoot = process.getuid?.() === 0;

function detect(): { cgroups: UepCgroups | undefined; logs: string[] } {
  const logs: string[] = [];
  const log: Logger = {
    debug: () => {},
    info: (m) => logs.push(m),
    warn: (m) => logs.push(m),
    error: (m) => logs.push(m),
  };
  return { cgroups: UepCgroups.detect(randomUUID(), log), logs };
}

describe.skipIf(!isRoot)("a root MEP's cgroups", () => {
  let user: LocalTestUser;
  let cli: string;
  const engines: EngineAsUser[] = [];
  /** Ended after each test whatever happened, so that a failed test leaves no sleeper behind. */
  const ended: UepCgroup[] = [];
  beforeAll(() => {
    user = createUser();
    cli = installedCli();
  }, 300_000);
  afterEach(async () => {
    for (const e of engines.splice(0)) await e.close();
    for (const c of ended.splice(0)) await c.end();
  });
  afterAll(() => removeUsersAndGroups());

  it("ends a UEP's double-forked, setsid'd, environment-less process with the UEP", async (ctx) => {
    const { cgroups, logs } = detect();
    if (!cgroups) ctx.skip(`this MEP makes no cgroups: ${logs.join(" ")}`);
    expect(logs.join("\n")).toMatch(/^Each user endpoint runs in a cgroup of its own/);
    const cgroup = cgroups!.prepare(`uep.test.${randomUUID()}`, { uid: user.uid, gid: user.gid })!;
    expect(cgroup).toBeDefined();
    // Delegated: the UEP's user may divide its memory cgroup among its workers.
    expect(statSync(cgroup.memoryDir!).uid).toBe(user.uid);
    // Waits for a line first, so that it forks only once it is inside the cgroup.
    const child = spawn(
      "setpriv",
      [
        `--reuid=${user.uid}`,
        `--regid=${user.gid}`,
        "--init-groups",
        "--",
        "/bin/sh",
        "-c",
        "read go; (env -i setsid sleep 300 >/dev/null 2>&1 & echo $!); exec sleep 300",
      ],
      { stdio: ["pipe", "pipe", "inherit"] },
    );
    cgroup.enter(child.pid!);
    ended.push(cgroup);
    child.stdin!.write("go\n");
    const orphan = await new Promise<number>((resolve) =>
      child.stdout!.once("data", (d: Buffer) => resolve(Number(d))),
    );
    // $! is known before the fork has run env, setsid and sleep: wait until it is sleep.
    await expect.poll(() => readFileSync(`/proc/${orphan}/comm`, "utf8"), { timeout: 5_000 }).toBe("sleep\n");
    const stat = readFileSync(`/proc/${orphan}/stat`, "utf8");
    // Reparented away from the shell, and no marker in its environment: only the cgroup holds it.
    expect(Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])).not.toBe(child.pid);
    expect(readFileSync(`/proc/${orphan}/environ`, "utf8")).toBe("");
    expect(alive(orphan)).toBe(true);

    await cgroup.end();
    expect(alive(orphan)).toBe(false);
    expect(alive(child.pid!)).toBe(false);
    cgroups!.close();
  }, 60_000);

  it("gives each worker a memory cgroup, and a worker the kernel stops there fails as WorkerOutOfMemory", async (ctx) => {
    const { cgroups, logs } = detect();
    if (!cgroups) ctx.skip(`this MEP makes no cgroups: ${logs.join(" ")}`);
    const cgroup = cgroups!.prepare(`uep.test.${randomUUID()}`, { uid: user.uid, gid: user.gid })!;
    if (!cgroup.memoryDir?.startsWith("/sys/fs/cgroup/memory/")) {
      ctx.skip("per-worker memory cgroups need the cgroup v1 memory hierarchy, which this host lacks");
    }
    ended.push(cgroup);
    const engine = engineAsUser(
      cli,
      user,
      { type: "ProcessPoolEngine", max_workers: 1, max_memory_per_worker: 64 },
      { [UEP_CGROUP_ENV]: cgroup.memoryDir! },
    );
    engines.push(engine);
    await engine.started;
    const where = await engine.run(
      `() => process.getBuiltinModule("node:fs").readFileSync("/proc/self/cgroup", "utf8")`,
    );
    expect(where.ok && JSON.parse(where.value.data)).toMatch(
      /:memory:.*\/uep\.test\.[0-9a-f-]+\.[0-9a-f]{8}\/worker-\d+\n/,
    );
    // Buffers live outside V8's heap: the heap limit does not see them, the cgroup does.
    const result = await engine.run(`() => {
      const keep = [];
      for (;;) keep.push(Buffer.alloc(8 * 1024 * 1024, 1));
    }`);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error).toMatchObject({ name: "WorkerOutOfMemory", code: "WORKER_OUT_OF_MEMORY" });
    expect(!result.ok && result.error.message).toContain(
      "cgroup memory limit of 320 MiB (engine.max_memory_per_worker + 256 MiB)",
    );
    await engine.close();
    await cgroup.end();
    cgroups!.close();
  }, 120_000);
});
