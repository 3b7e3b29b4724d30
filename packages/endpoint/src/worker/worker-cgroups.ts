/**
 * Per-worker memory cgroups, inside the cgroup a root MEP gave this UEP and
 * delegated to its user (see manager/cgroups.ts; its path in CONDUIT_UEP_CGROUP). With `max_memory_per_worker`
 * set, each worker goes into a child cgroup limited to its heap plus
 * CGROUP_HEADROOM_MIB, so memory outside V8's heap (Buffers, native code, the
 * processes a task starts) is bounded too, and the kernel's OOM killer acts on
 * that worker alone. cgroup v1 (the memory hierarchy) only: under v2 a child
 * with its own limit would need the UEP itself moved out of its cgroup first.
 */
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../logging.js";
import { CGROUP_HEADROOM_MIB } from "./worker-limits.js";

export interface WorkerCgroup {
  /** Whether the kernel's OOM killer acted in this cgroup. */
  outOfMemory(): boolean;
  remove(): void;
}

/** The environment variable through which the MEP tells a UEP (and its blocks) the memory cgroup it may divide. */
export const UEP_CGROUP_ENV = "CONDUIT_UEP_CGROUP";

export class WorkerCgroups {
  private constructor(
    private readonly parent: string,
    private readonly limitBytes: number,
    private readonly log: Logger,
  ) {}

  /**
   * Per-worker cgroups under this process's own memory cgroup, or undefined
   * (logged) when it cannot make them: not delegated to this user, or no v1
   * memory hierarchy.
   */
  static open(heapMiB: number, log: Logger): WorkerCgroups | undefined {
    const parent = process.env[UEP_CGROUP_ENV];
    if (!parent?.startsWith("/sys/fs/cgroup/memory/")) {
      log.debug(
        "No per-worker memory cgroups (no cgroup v1 memory cgroup from the endpoint manager); max_memory_per_worker limits the JavaScript heap only.",
      );
      return undefined;
    }
    const probe = join(parent, `conduit-probe-${process.pid}`);
    try {
      mkdirSync(probe);
      rmdirSync(probe);
    } catch (err) {
      log.debug(
        `No per-worker memory cgroups (${parent} is not this user's: ${(err as NodeJS.ErrnoException).code}); max_memory_per_worker limits the JavaScript heap only.`,
      );
      return undefined;
    }
    const limitMiB = heapMiB + CGROUP_HEADROOM_MIB;
    log.info(`Each worker runs in a memory cgroup of its own under ${parent}, limited to ${limitMiB} MiB.`);
    return new WorkerCgroups(parent, limitMiB * 1024 * 1024, log);
  }

  /** Moves a just-started worker into a new cgroup of its own; undefined (logged) if that fails. */
  add(pid: number): WorkerCgroup | undefined {
    const dir = join(this.parent, `worker-${pid}`);
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, "memory.limit_in_bytes"), String(this.limitBytes));
      // Without swap accounting this file is absent; then the limit above is the only one.
      try {
        writeFileSync(join(dir, "memory.memsw.limit_in_bytes"), String(this.limitBytes));
      } catch {}
      writeFileSync(join(dir, "cgroup.procs"), String(pid));
    } catch (err) {
      this.log.warn(`Could not put worker ${pid} in its memory cgroup ${dir}: ${(err as Error).message}`);
      removeLater(dir);
      return undefined;
    }
    return {
      outOfMemory: () => {
        try {
          const control = readFileSync(join(dir, "memory.oom_control"), "utf8");
          const kills = /^oom_kill (\d+)$/m.exec(control);
          if (kills) return Number(kills[1]) > 0;
          return /^under_oom 1$/m.test(control) || Number(readFileSync(join(dir, "memory.failcnt"), "utf8")) > 0;
        } catch {
          return false;
        }
      },
      remove: () => removeLater(dir),
    };
  }
}

/** rmdir once the worker's last process has left (a task's stragglers may still be ending). */
function removeLater(dir: string, attempts = 10): void {
  try {
    rmdirSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EBUSY" && attempts > 0) setTimeout(() => removeLater(dir, attempts - 1), 1000).unref();
  }
}
