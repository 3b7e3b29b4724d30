/**
 * With `metrics_port` in the MEP's config.yaml, each UEP writes its engine's
 * counts to `status.json` in its directory every {@link STATUS_FILE_PERIOD_MS};
 * the MEP reads those of its running UEPs when Prometheus scrapes it.
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { EngineStatus } from "../engines/engine-types.js";

export const STATUS_FILE = "status.json";
export const STATUS_FILE_PERIOD_MS = 2_000;

export interface UepStatus {
  workers: number;
  idleWorkers: number;
  blocks: number;
  /** On a worker now. */
  tasksRunning: number;
  /** Handed to the engine, not on a worker yet. */
  tasksPending: number;
  /** When it was written (ms since the epoch). */
  at: number;
}

export function toUepStatus(status: EngineStatus, at = Date.now()): UepStatus {
  return {
    workers: status.totalWorkers,
    idleWorkers: status.idleWorkers,
    // Engines without blocks run their workers in one.
    blocks: status.blocks ?? 1,
    tasksRunning: Math.max(0, status.outstandingTasks - status.pendingTasks),
    tasksPending: status.pendingTasks,
    at,
  };
}

/** Writes `<dir>/status.json` atomically (a reader never sees half a file). */
export function writeUepStatus(dir: string, status: UepStatus): void {
  const file = join(dir, STATUS_FILE);
  writeFileSync(`${file}.tmp`, JSON.stringify(status), { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

/** The status a UEP last wrote in `dir`, or undefined when there is none (yet) or it is unreadable. */
export function readUepStatus(dir: string): UepStatus | undefined {
  try {
    const value = JSON.parse(readFileSync(join(dir, STATUS_FILE), "utf8")) as Partial<UepStatus>;
    const counts = [value.workers, value.idleWorkers, value.blocks, value.tasksRunning, value.tasksPending];
    return counts.every((n) => typeof n === "number" && Number.isFinite(n)) ? (value as UepStatus) : undefined;
  } catch {
    return undefined;
  }
}
