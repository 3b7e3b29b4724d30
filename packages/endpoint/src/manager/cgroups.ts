/**
 * A root MEP puts each UEP in a cgroup of its own (v1: the memory and pids
 * hierarchies; v2: the unified one), under the MEP's own cgroup, in
 * `conduit-<endpoint id>/<uep name>.<random>`. A process cannot leave its cgroup by
 * `setsid`, double-forking or clearing its environment, so when the UEP stops
 * everything in its cgroup ends: the one sure way to end a whole tree.
 * The memory cgroup is delegated to the UEP's user (the folder and its
 * cgroup.procs), so the UEP can give each worker a limited child cgroup
 * (worker/worker-cgroups.ts); it can only divide what it was given.
 * Detected at start and logged; without it, see process-tree.ts for what a
 * task can leave behind.
 */
import { randomBytes } from "node:crypto";
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "../logging.js";

/** What the processes in a stopped UEP's cgroup get between SIGTERM and SIGKILL. */
const GRACE_MS = 2000;

interface Hierarchy {
  /** `memory`, `pids`, or `unified`. */
  kind: string;
  /** `<mount>/<MEP's own cgroup>/conduit-<endpoint id>`. */
  base: string;
}

export interface UepCgroup {
  /** The UEP's memory cgroup folder (handed to the UEP in CONDUIT_UEP_CGROUP), if there is one. */
  readonly memoryDir: string | undefined;
  /**
   * Moves the UEP in, right after spawn: node is still starting then, and
   * every process it starts later is born inside.
   */
  enter(pid: number): void;
  /** Ends every process in the cgroup (SIGTERM, SIGKILL after 2 s) and removes it. */
  end(): Promise<void>;
}

/** The MEP's cgroups by hierarchy: `memory` → `/process_api/x`, from /proc/self/cgroup. */
function ownCgroups(): Map<string, string> {
  const own = new Map<string, string>();
  let text = "";
  try {
    text = readFileSync("/proc/self/cgroup", "utf8");
  } catch {}
  for (const line of text.split("\n")) {
    const [, controllers, ...path] = line.split(":");
    if (controllers === undefined) continue;
    const names = controllers === "" ? ["unified"] : controllers.split(",");
    for (const name of names) own.set(name, path.join(":"));
  }
  return own;
}

export class UepCgroups {
  private constructor(
    private readonly hierarchies: Hierarchy[],
    private readonly log: Logger,
  ) {}

  /** The hierarchies this MEP can make cgroups in, or undefined; logs which, or why none. */
  static detect(endpointId: string, log: Logger): UepCgroups | undefined {
    const none = (why: string) => {
      log.info(
        `User endpoints run without a cgroup (${why}); a process a task starts with setsid, a double fork and an environment of its own can outlive the task.`,
      );
      return undefined;
    };
    if (process.getuid?.() !== 0) return none("the endpoint manager is not root");
    const own = ownCgroups();
    const candidates: Array<{ kind: string; mount: string }> = existsSync("/sys/fs/cgroup/cgroup.controllers")
      ? [{ kind: "unified", mount: "/sys/fs/cgroup" }]
      : [
          { kind: "memory", mount: "/sys/fs/cgroup/memory" },
          { kind: "pids", mount: "/sys/fs/cgroup/pids" },
        ];
    const usable: Hierarchy[] = [];
    const problems: string[] = [];
    for (const { kind, mount } of candidates) {
      const path = own.get(kind);
      if (path === undefined || !existsSync(mount)) {
        problems.push(`no ${kind} cgroup hierarchy at ${mount}`);
        continue;
      }
      const base = join(mount, path, `conduit-${endpointId}`);
      try {
        mkdirSync(base, { recursive: true });
        usable.push({ kind, base });
      } catch (err) {
        problems.push(`cannot create ${base}: ${(err as NodeJS.ErrnoException).code}`);
      }
    }
    if (usable.length === 0) return none(problems.join("; "));
    // A previous instance that died without cleaning up left its UEPs' cgroups: end what is in them.
    const leftovers = usable.flatMap((h) => subdirs(h.base));
    if (leftovers.length > 0) {
      log.info(`Ending the processes left in ${leftovers.length} cgroup(s) by the previous instance`);
      void endCgroups(leftovers);
    }
    log.info(
      `Each user endpoint runs in a cgroup of its own, whose processes all end when it stops: ${usable.map((h) => `${h.kind} under ${h.base}`).join(", ")}${problems.length ? ` (not: ${problems.join("; ")})` : ""}.`,
    );
    return new UepCgroups(usable, log);
  }

  /**
   * Makes the cgroups of a UEP about to be spawned; a UEP of a mapped user
   * gets its memory cgroup delegated. Undefined (logged) on failure: the UEP
   * then runs as it would without cgroups.
   */
  prepare(name: string, owner?: { uid: number; gid: number }): UepCgroup | undefined {
    const dirs: string[] = [];
    let memoryDir: string | undefined;
    // One folder per spawn: a UEP started again under the same name must not share the cgroup its predecessor's end empties.
    const folder = `${name}.${randomBytes(4).toString("hex")}`;
    try {
      for (const h of this.hierarchies) {
        const dir = join(h.base, folder);
        mkdirSync(dir, { recursive: true });
        dirs.push(dir);
        if (h.kind === "memory" || h.kind === "unified") {
          memoryDir = dir;
          if (owner) {
            for (const file of ["", "cgroup.procs", "tasks"]) {
              const path = join(dir, file);
              if (existsSync(path)) chownSync(path, owner.uid, owner.gid);
            }
          }
        }
      }
    } catch (err) {
      this.log.warn(`Could not make the cgroup of user endpoint ${name}: ${(err as Error).message}`);
      for (const dir of dirs) removeTree(dir);
      return undefined;
    }
    return {
      memoryDir,
      enter: (pid) => {
        try {
          for (const dir of dirs) writeFileSync(join(dir, "cgroup.procs"), String(pid));
        } catch (err) {
          this.log.warn(`Could not put user endpoint ${name} (pid ${pid}) in its cgroup: ${(err as Error).message}`);
        }
      },
      end: () => endCgroups(dirs),
    };
  }

  /** Removes the endpoint's own folders (empty once every UEP's cgroup is gone). */
  close(): void {
    for (const h of this.hierarchies) {
      try {
        rmdirSync(h.base);
      } catch {}
    }
  }
}

/** Pids in a cgroup and its children (a UEP's per-worker cgroups). */
function members(dir: string): number[] {
  const pids: number[] = [];
  try {
    for (const line of readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n")) if (line) pids.push(Number(line));
  } catch {
    return pids;
  }
  for (const child of subdirs(dir)) pids.push(...members(child));
  return pids;
}

function subdirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => join(dir, e.name));
  } catch {
    return [];
  }
}

function signalAll(pids: readonly number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {}
  }
}

/** Deepest first, so that a parent is empty of children when its turn comes. */
function removeTree(dir: string): void {
  for (const child of subdirs(dir)) removeTree(child);
  try {
    rmdirSync(dir);
  } catch {}
}

async function endCgroups(dirs: readonly string[]): Promise<void> {
  const all = () => [...new Set(dirs.flatMap(members))];
  // Read afresh each round: a pid listed in cgroup.procs is a member now, not a remembered pid since reused.
  signalAll(all(), "SIGTERM");
  const deadline = Date.now() + GRACE_MS;
  while (all().length > 0 && Date.now() < deadline) await sleep(100);
  for (let round = 0; round < 20; round++) {
    const left = all();
    if (left.length === 0) break;
    signalAll(left, "SIGKILL");
    await sleep(50);
  }
  for (const dir of dirs) removeTree(dir);
}
