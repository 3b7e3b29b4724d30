/**
 * What a task leaves behind: the processes it started. They are found two
 * ways, because each misses some: the tree of a process's descendants (by
 * the parent pids in /proc/<pid>/stat), which loses a process that
 * double-forked away and was reparented to init; and a marker in the
 * environment every descendant inherits (`CONDUIT_TASK_ID=<task id>`, read
 * from /proc/<pid>/environ), which catches those orphans but not a process
 * started with an environment of its own. Only a cgroup catches both (see
 * manager/cgroups.ts). Linux only: elsewhere nothing is found.
 *
 * The scan reads a few files per process, so a worker reads only the
 * processes whose pids were handed out while the task ran (the last pid of
 * /proc/loadavg, before and after): nothing for a task that started nothing
 * while nothing else on the host did, and otherwise a cost that follows what
 * was started, not how many processes the host runs.
 */
import { closeSync, openSync, readdirSync, readSync, statSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

/** A process as /proc shows it; `start` tells a process from a later one that reused its pid. */
export interface ProcessEntry {
  pid: number;
  ppid: number;
  /** Start time in clock ticks since boot (field 22 of /proc/<pid>/stat). */
  start: number;
  /** A zombie has ended already; only its parent's wait() is missing. */
  zombie: boolean;
}

/** USER_HZ, the unit of /proc's start times: 100 on every Linux architecture Node runs on. */
const TICKS_PER_SECOND = 100;
const buffer = Buffer.alloc(64 * 1024);

/** Reads a small /proc file; undefined when it is gone or unreadable (another user's, with EACCES). */
function readProc(path: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return undefined;
  }
  try {
    const n = readSync(fd, buffer, 0, buffer.length, 0);
    return buffer.toString("latin1", 0, n);
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** Uptime (s) at this module's load, paired with the monotonic clock then: ticksNow reads no file per task. */
const bootClock = (() => {
  const uptime = Number.parseFloat(readProc("/proc/uptime") ?? "");
  return Number.isFinite(uptime) ? { uptime, at: performance.now() } : undefined;
})();

/**
 * Where lastPid reads: /proc/sys/kernel/ns_last_pid (the number alone), else
 * field 5 of /proc/loadavg (the same counter). Opened once and read again at
 * offset 0, which makes the kernel render it anew: a worker reads it twice per
 * task, and one pread costs a fifth of an open, read and close of
 * /proc/loadavg (2.4 against 11.4 µs here).
 */
let lastPidSource: { fd: number; field: number } | null | undefined;

function openLastPidSource(): { fd: number; field: number } | null {
  for (const [path, field] of [
    ["/proc/sys/kernel/ns_last_pid", 0],
    ["/proc/loadavg", 4],
  ] as const) {
    try {
      return { fd: openSync(path, "r"), field };
    } catch {
      // Not there (no /proc, or a kernel without it): try the next.
    }
  }
  return null;
}

/** The pid most recently handed out in this pid namespace; undefined without /proc. */
export function lastPid(): number | undefined {
  lastPidSource ??= openLastPidSource();
  if (lastPidSource === null) return undefined;
  let last = Number.NaN;
  try {
    const n = readSync(lastPidSource.fd, buffer, 0, 256, 0);
    last = Number(buffer.toString("latin1", 0, n).trim().split(" ")[lastPidSource.field]);
  } catch {
    // Handled below.
  }
  if (Number.isInteger(last) && last > 0) return last;
  // A task closed the descriptor (and the number may now be another file's): open it again next time.
  lastPidSource = undefined;
  return undefined;
}

/** Now, in the clock ticks of /proc's start times (one tick early, so a process started this instant counts). */
export function ticksNow(): number {
  if (!bootClock) return 0;
  const uptime = bootClock.uptime + (performance.now() - bootClock.at) / 1000;
  return Math.floor(uptime * TICKS_PER_SECOND) - 1;
}

export function readEntry(pid: number): ProcessEntry | undefined {
  const stat = readProc(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  // The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ppid = Number(fields[1]);
  const start = Number(fields[19]);
  return Number.isInteger(ppid) && Number.isInteger(start)
    ? { pid, ppid, start, zombie: fields[0] === "Z" }
    : undefined;
}

/** Whether `pid` was handed out after `from`, up to `to` (pids wrap around at pid_max). */
function inPidRange(pid: number, range: { from: number; to: number }): boolean {
  return range.from <= range.to ? pid > range.from && pid <= range.to : pid > range.from || pid <= range.to;
}

function allProcesses(range?: { from: number; to: number }): ProcessEntry[] {
  let names: string[];
  try {
    names = readdirSync("/proc");
  } catch {
    return [];
  }
  const entries: ProcessEntry[] = [];
  for (const name of names) {
    if (name.charCodeAt(0) < 48 || name.charCodeAt(0) > 57) continue;
    const pid = Number(name);
    if (range && !inPidRange(pid, range)) continue;
    const entry = readEntry(pid);
    if (entry) entries.push(entry);
  }
  return entries;
}

export interface FindOptions {
  /** Every descendant of this process (not the process itself). */
  root?: number;
  /** Every process whose environment has this `NAME=value` entry. */
  marker?: string;
  /** Only processes started at or after this tick (see ticksNow); bounds the environment reads. */
  since?: number;
  /**
   * Only processes whose pid was handed out after `from`, up to `to` (see
   * lastPid): a worker's task ends before another begins, so all it started
   * is there, and nothing else is read.
   */
  pids?: { from: number; to: number };
  /** Never these pids (the caller itself). */
  except?: readonly number[];
  /** Only processes of this user (a root MEP must not end another user's process that copied a marker). */
  uid?: number;
}

/** The processes a task (or a UEP) left, found as the module doc says. */
export function findProcesses(options: FindOptions): ProcessEntry[] {
  const all = allProcesses(options.pids);
  const found = new Map<number, ProcessEntry>();
  if (options.root !== undefined) {
    const children = new Map<number, ProcessEntry[]>();
    for (const p of all) {
      const list = children.get(p.ppid);
      if (list) list.push(p);
      else children.set(p.ppid, [p]);
    }
    const stack = [options.root];
    while (stack.length > 0) {
      for (const child of children.get(stack.pop() as number) ?? []) {
        if (found.has(child.pid)) continue;
        found.set(child.pid, child);
        stack.push(child.pid);
      }
    }
  }
  if (options.marker !== undefined) {
    const needle = `\0${options.marker}\0`;
    for (const p of all) {
      if (found.has(p.pid) || (options.since !== undefined && p.start < options.since)) continue;
      const environ = readProc(`/proc/${p.pid}/environ`);
      if (environ && `\0${environ}`.includes(needle)) found.set(p.pid, p);
    }
  }
  const except = new Set([process.pid, ...(options.except ?? [])]);
  return [...found.values()].filter(
    (p) => !except.has(p.pid) && !p.zombie && (options.uid === undefined || ownerOf(p.pid) === options.uid),
  );
}

function ownerOf(pid: number): number | undefined {
  try {
    return statSync(`/proc/${pid}`).uid;
  } catch {
    return undefined;
  }
}

/** Whether the process is still the one in `entry` (not gone, not a later process with its pid). */
function alive(entry: ProcessEntry): boolean {
  const now = readEntry(entry.pid);
  return now !== undefined && now.start === entry.start && !now.zombie;
}

function signal(entry: ProcessEntry, sig: NodeJS.Signals): void {
  if (!alive(entry)) return;
  try {
    process.kill(entry.pid, sig);
  } catch {
    // gone meanwhile, or not ours to signal
  }
}

/**
 * SIGTERM now, SIGKILL after `graceMs` to those still there. The SIGTERMs go
 * out before this returns, so a caller that snapshots and signals in one
 * synchronous step knows no later process is touched.
 */
export async function endProcesses(entries: readonly ProcessEntry[], graceMs: number): Promise<void> {
  if (entries.length === 0) return;
  for (const e of entries) signal(e, "SIGTERM");
  const deadline = Date.now() + graceMs;
  let left = entries.filter(alive);
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(100);
    left = left.filter(alive);
  }
  for (const e of left) signal(e, "SIGKILL");
}
