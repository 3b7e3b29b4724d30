/**
 * `cpu_affinity` of a HighThroughputEngine, as upstream's worker pool: which
 * CPUs each worker of a block may run on. `none` leaves workers unpinned;
 * `block` gives worker i the i-th run of adjacent CPUs (0-1, 2-3, …),
 * `block-reverse` the same counted from the last CPU, `alternating` every
 * n-th CPU from i (0,2 / 1,3), and `list:0,1:2-3` names each worker's CPUs
 * (one `:`-separated entry per worker). The CPUs shared out are the ones the
 * block manager itself may use (its affinity mask, e.g. the cores Slurm gave
 * the job). Node cannot call sched_setaffinity, so a pinned worker starts
 * under `taskset -c <cpus>` (util-linux), which sets its mask and execs it.
 */
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";

export type CpuAffinity =
  | { kind: "none" }
  | { kind: "block" | "block-reverse" | "alternating" }
  | { kind: "list"; workers: readonly (readonly number[])[] };

export const CPU_AFFINITY_FORMS = "none, block, block-reverse, alternating, or list:<cpus>:<cpus>… (e.g. list:0,1:2-3)";

/** Reads a `cpu_affinity` value; throws an Error whose message completes "cpu_affinity …". */
export function parseCpuAffinity(value: string): CpuAffinity {
  if (value === "none" || value === "block" || value === "block-reverse" || value === "alternating") {
    return value === "none" ? { kind: "none" } : { kind: value };
  }
  if (value.startsWith("list:")) {
    const entries = value.slice("list:".length).split(":");
    const workers = entries.map((entry) => parseCpuList(entry));
    if (workers.every((cpus) => cpus !== undefined)) return { kind: "list", workers: workers as number[][] };
  }
  throw new Error(`must be one of ${CPU_AFFINITY_FORMS}`);
}

/** "0,2-3" → [0, 2, 3]; undefined when malformed. */
function parseCpuList(entry: string): number[] | undefined {
  const cpus: number[] = [];
  for (const part of entry.split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) return undefined;
    const low = Number(m[1]);
    const high = m[2] === undefined ? low : Number(m[2]);
    if (high < low) return undefined;
    for (let cpu = low; cpu <= high; cpu++) cpus.push(cpu);
  }
  return cpus;
}

/** The CPUs this process may run on (Linux: its affinity mask), in order. */
export function allowedCpus(statusText?: string): number[] {
  try {
    const text = statusText ?? readFileSync("/proc/self/status", "utf8");
    const m = /^Cpus_allowed_list:\s*(\S+)$/m.exec(text);
    const cpus = m ? parseCpuList(m[1]) : undefined;
    if (cpus && cpus.length > 0) return cpus;
  } catch {
    // Not Linux: every CPU.
  }
  return Array.from({ length: availableParallelism() }, (_, i) => i);
}

/**
 * Each worker's CPUs (index = rank), or undefined for `none`. Throws an Error
 * (one sentence, the fix included) when a list does not fit this block.
 */
export function workerCpuSets(
  affinity: CpuAffinity,
  workers: number,
  allowed: readonly number[],
): number[][] | undefined {
  if (affinity.kind === "none") return undefined;
  if (affinity.kind === "list") {
    if (affinity.workers.length !== workers) {
      throw new Error(
        `cpu_affinity lists the CPUs of ${affinity.workers.length} worker(s) but this block runs ${workers}; give one list entry per worker, or set max_workers_per_node (and cores_per_worker) so that ${affinity.workers.length} run`,
      );
    }
    const outside = [...new Set(affinity.workers.flat())].filter((cpu) => !allowed.includes(cpu));
    if (outside.length > 0) {
      throw new Error(
        `cpu_affinity names CPU(s) ${outside.join(",")}, which this block may not use (it may use ${allowed.join(",")}); list only those CPUs`,
      );
    }
    return affinity.workers.map((cpus) => [...cpus]);
  }
  const n = allowed.length;
  const per = Math.max(1, Math.floor(n / workers));
  return Array.from({ length: workers }, (_, rank) => {
    if (affinity.kind === "alternating") {
      const cpus: number[] = [];
      for (let i = rank % n; i < n; i += workers) cpus.push(allowed[i]);
      return cpus;
    }
    const slot = affinity.kind === "block-reverse" ? workers - rank - 1 : rank;
    return Array.from({ length: per }, (_, i) => allowed[(slot * per + i) % n]);
  });
}

/** "0-1" style for taskset and the environment. */
export function cpuListText(cpus: readonly number[]): string {
  return cpus.join(",");
}

/** The option's text again (for the block manager's command line). */
export function cpuAffinityText(affinity: CpuAffinity): string {
  return affinity.kind === "list" ? `list:${affinity.workers.map(cpuListText).join(":")}` : affinity.kind;
}
