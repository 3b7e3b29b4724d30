/**
 * Limits of the process-based engines' workers: `max_memory_per_worker`
 * (V8's `--max-old-space-size`, plus a cgroup memory limit where the UEP has
 * a cgroup it may divide), `max_open_files_per_worker` (RLIMIT_NOFILE) and
 * `max_user_processes` (RLIMIT_NPROC, which the kernel counts per local user),
 * both set through `prlimit` as the worker starts, so that the task and all
 * it starts inherit them. Never RLIMIT_AS: WebAssembly reserves address space
 * far beyond what it uses, and fails under it.
 */
import { readFileSync } from "node:fs";
import { toWireError, type WireError } from "@conduit/protocol/task";
import { ConfigError, EngineError } from "../errors.js";

/** The three options of a ProcessPoolEngine or HighThroughputEngine; 0 means none. */
/** Absent (or 0, from a block manager's command line) means no limit. */
export interface WorkerLimits {
  readonly max_memory_per_worker?: number;
  readonly max_open_files_per_worker?: number;
  readonly max_user_processes?: number;
}

/** Memory a worker's cgroup allows beyond its heap: code, stacks, Buffers and what its tasks start. */
export const CGROUP_HEADROOM_MIB = 256;

/** The same limits as `block-manager.js` flags, so a block's workers get them too. */
export function limitArgs(limits: WorkerLimits | undefined): string[] {
  if (!limits) return [];
  const args: string[] = [];
  if (limits.max_memory_per_worker) args.push("--max-memory-per-worker", String(limits.max_memory_per_worker));
  if (limits.max_open_files_per_worker) {
    args.push("--max-open-files-per-worker", String(limits.max_open_files_per_worker));
  }
  if (limits.max_user_processes) args.push("--max-user-processes", String(limits.max_user_processes));
  return args;
}

/** The inverse of limitArgs, from parseArgs values. */
export function limitsFromArgs(values: Record<string, string | boolean | undefined>): WorkerLimits {
  const n = (key: string) => {
    const value = Number(values[key] ?? 0);
    return Number.isInteger(value) && value > 0 ? value : 0;
  };
  return {
    max_memory_per_worker: n("max-memory-per-worker"),
    max_open_files_per_worker: n("max-open-files-per-worker"),
    max_user_processes: n("max-user-processes"),
  };
}

/** parseArgs options for limitsFromArgs. */
export const LIMIT_ARG_OPTIONS = {
  "max-memory-per-worker": { type: "string" },
  "max-open-files-per-worker": { type: "string" },
  "max-user-processes": { type: "string" },
} as const;

/** The command that starts a worker with these limits: `[command, args]`. */
export function workerCommand(entry: string, limits: WorkerLimits | undefined): [string, string[]] {
  const node = [process.execPath, ...heapArgs(limits), entry];
  const rlimits: string[] = [];
  // soft = hard: a task cannot raise its own limit back.
  if (limits?.max_open_files_per_worker) rlimits.push(`--nofile=${limits.max_open_files_per_worker}`);
  if (limits?.max_user_processes) rlimits.push(`--nproc=${limits.max_user_processes}`);
  if (rlimits.length === 0) return [node[0] as string, node.slice(1)];
  return ["prlimit", [...rlimits, "--", ...node]];
}

function heapArgs(limits: WorkerLimits | undefined): string[] {
  return limits?.max_memory_per_worker ? [`--max-old-space-size=${limits.max_memory_per_worker}`] : [];
}

/**
 * Refuses, with one sentence, a limit this process could not set: above its
 * own hard limit (which its workers inherit), only a privileged process may go.
 */
export function checkHardLimits(limits: WorkerLimits, path: string, limitsText = readLimits()): void {
  const checks = [
    ["max_open_files_per_worker", "Max open files", "open files", "ulimit -Hn"],
    ["max_user_processes", "Max processes", "processes", "ulimit -Hu"],
  ] as const;
  for (const [key, row, what, shell] of checks) {
    const wanted = limits[key];
    const hard = hardLimit(limitsText, row);
    if (wanted && hard !== undefined && wanted > hard) {
      throw new ConfigError(
        `${path}.${key} is ${wanted}, above this endpoint's hard limit of ${hard} ${what} (${shell}); lower it, or raise the hard limit of the endpoint manager.`,
      );
    }
  }
}

function readLimits(): string {
  try {
    return readFileSync("/proc/self/limits", "utf8");
  } catch {
    return "";
  }
}

/** The hard limit of a /proc/<pid>/limits row; undefined when unlimited or unknown. */
function hardLimit(text: string, row: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(row));
  const hard = line?.slice(row.length).trim().split(/\s+/)[1];
  return hard && /^\d+$/.test(hard) ? Number(hard) : undefined;
}

/** V8's own words when a heap is exhausted. */
const HEAP_EXHAUSTED = /Reached heap limit|JavaScript heap out of memory/;

export interface WorkerDeath {
  signal: NodeJS.Signals | null;
  /** The end of the worker's stderr. */
  stderrTail: string;
  /** The worker's cgroup ran out of memory (its OOM-kill or fail counter moved). */
  cgroupOom: boolean;
}

/**
 * The error of a task whose worker died of memory exhaustion, or undefined
 * when it died of something else: V8 says so on stderr (and aborts), a
 * SIGABRT under a configured heap limit, or the cgroup's OOM killer.
 */
export function outOfMemoryError(
  taskId: string,
  death: WorkerDeath,
  limits: WorkerLimits | undefined,
): WireError | undefined {
  const heapMiB = limits?.max_memory_per_worker ?? 0;
  if (HEAP_EXHAUSTED.test(death.stderrTail) || (heapMiB > 0 && death.signal === "SIGABRT")) {
    const limit = heapMiB
      ? `its JavaScript heap limit of ${heapMiB} MiB (engine.max_memory_per_worker)`
      : "V8's default JavaScript heap limit (set engine.max_memory_per_worker to choose it)";
    return outOfMemory(
      `Task ${taskId} ran its worker out of memory: the worker reached ${limit} and was stopped; use less memory or raise max_memory_per_worker.`,
    );
  }
  if (death.cgroupOom && heapMiB > 0) {
    return outOfMemory(
      `Task ${taskId} ran its worker out of memory: the worker and the processes it started reached their cgroup memory limit of ${heapMiB + CGROUP_HEADROOM_MIB} MiB (engine.max_memory_per_worker + ${CGROUP_HEADROOM_MIB} MiB) and the kernel stopped it; use less memory or raise max_memory_per_worker.`,
    );
  }
  return undefined;
}

function outOfMemory(message: string): WireError {
  return toWireError(new EngineError("WORKER_OUT_OF_MEMORY", message));
}
