/**
 * The shell command that starts a block manager: what a provider runs (after
 * worker_init) for each block. Its flags are the ones block-manager.ts reads.
 */
import { shellJoin } from "../shell-quote.js";
import { workerEntryPath } from "./worker-entry.js";
import { limitArgs, type WorkerLimits } from "./worker-limits.js";

export interface BlockManagerLaunch {
  /** Addresses the interchange may be reached at: the block manager tries each and uses the first that answers. */
  addresses: readonly string[];
  port: number;
  /** The interchange's Unix socket (containerized blocks): tried first, before the addresses. */
  socket?: string;
  blockId: string;
  /** Worker processes the block manager forks. */
  workers: number;
  /** File holding the engine's secret (mode 0600). */
  secretFile: string;
  /** The folder of the interchange's CA and client certificate (encrypted); none: plain TCP. */
  tlsDir?: string;
  /** Seconds between heartbeats, and of silence from the interchange after which the block stops. */
  heartbeatPeriod: number;
  heartbeatThreshold: number;
  coresPerWorker: number;
  /** Device ids: one worker per accelerator. */
  accelerators: readonly string[];
  /** The folder the block runs in; none: where its provider started it. */
  workingDir?: string;
  /** The root of the tasks' own folders (run_in_sandbox); none: no sandbox. */
  sandboxDir?: string;
  /** GB each worker needs (mem_per_worker): caps the worker count by the node's available memory. */
  memPerWorker?: number;
  /** cpu_affinity as its text ("none": workers are not pinned). */
  cpuAffinity?: string;
  /** Seconds after which the block drains (drain_period). */
  drainPeriod?: number;
  /** The engine's max_memory_per_worker, max_open_files_per_worker and max_user_processes. */
  limits?: WorkerLimits;
}

/** Throws WORKER_ENTRY_MISSING when the package is not built. */
export function blockManagerCommand(launch: BlockManagerLaunch): string {
  return shellJoin([process.execPath, workerEntryPath("block-manager"), ...blockManagerArgs(launch)]);
}

/** The block manager's arguments (a container runs them with the image's own block manager). */
export function blockManagerArgs(launch: BlockManagerLaunch): string[] {
  return [
    "--addresses",
    launch.addresses.join(","),
    "--port",
    String(launch.port),
    ...(launch.socket ? ["--socket", launch.socket] : []),
    "--block-id",
    launch.blockId,
    "--workers",
    String(launch.workers),
    "--secret-file",
    launch.secretFile,
    ...(launch.tlsDir ? ["--tls-dir", launch.tlsDir] : []),
    "--heartbeat-period",
    String(launch.heartbeatPeriod),
    "--heartbeat-threshold",
    String(launch.heartbeatThreshold),
    "--cores-per-worker",
    String(launch.coresPerWorker),
    ...(launch.accelerators.length > 0 ? ["--accelerators", launch.accelerators.join(",")] : []),
    ...(launch.workingDir ? ["--working-dir", launch.workingDir] : []),
    ...(launch.sandboxDir ? ["--sandbox-dir", launch.sandboxDir] : []),
    ...(launch.memPerWorker !== undefined ? ["--mem-per-worker", String(launch.memPerWorker)] : []),
    ...(launch.cpuAffinity && launch.cpuAffinity !== "none" ? ["--cpu-affinity", launch.cpuAffinity] : []),
    ...(launch.drainPeriod !== undefined ? ["--drain-period", String(launch.drainPeriod)] : []),
    ...limitArgs(launch.limits),
  ];
}
