/**
 * Starts worker processes (`dist/worker/process-worker.js`) for a WorkerPool:
 * the current Node binary with an IPC channel, under `prlimit` when the
 * engine sets rlimits, in a cgroup of its own when the UEP may make one.
 * Used by the ProcessPoolEngine in the UEP and by the block manager in each
 * block. A worker that dies takes the processes of its task with it, and one
 * that ran out of memory fails its task as WorkerOutOfMemory.
 */
import { spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import type { EngineTask } from "../engine-task.js";
import { endProcesses, findProcesses, ticksNow } from "./process-tree.js";
import type { WorkerCgroups } from "./worker-cgroups.js";
import { workerEntryPath } from "./worker-entry.js";
import { outOfMemoryError, type WorkerLimits, workerCommand } from "./worker-limits.js";
import type { SpawnWorker } from "./worker-pool.js";
import { decodeFromWorker, type ToWorker } from "./worker-protocol.js";

export interface ProcessWorkerOptions {
  /** Each worker's environment, or a function of its rank (e.g. its accelerator). */
  env: NodeJS.ProcessEnv | ((rank: number) => NodeJS.ProcessEnv);
  limits?: WorkerLimits;
  /** Where each worker gets a memory cgroup of its own (max_memory_per_worker set and a delegated cgroup). */
  cgroups?: WorkerCgroups;
  /** A command that execs the worker's own, per rank (e.g. `taskset -c 0,1` for cpu_affinity); none: run it directly. */
  prefix?: (rank: number) => readonly string[];
}

/** What a dead worker's task processes get between SIGTERM and SIGKILL. */
const TASK_PROCESS_GRACE_MS = 2000;
/** Enough of a worker's stderr to find V8's out-of-memory report in. */
const STDERR_TAIL_CHARS = 4096;
/** How long a dead worker's stderr may take to drain before its exit is reported. */
const STDERR_DRAIN_MS = 300;

export function processWorkerSpawner(options: ProcessWorkerOptions): SpawnWorker {
  const entry = workerEntryPath("process-worker");
  const [command, args] = workerCommand(entry, options.limits);
  return (events, rank) => {
    const prefix = options.prefix?.(rank) ?? [];
    const [file, ...fileArgs] = prefix.length > 0 ? [...prefix, command, ...args] : [command, ...args];
    const child = spawn(file as string, fileArgs, {
      env: typeof options.env === "function" ? options.env(rank) : options.env,
      // stderr is read (and passed on) to tell an out-of-memory death from a crash.
      stdio: ["ignore", "inherit", "pipe", "ipc"],
      serialization: "json",
    });
    const cgroup = child.pid === undefined ? undefined : options.cgroups?.add(child.pid);
    let stderrTail = "";
    const stderrDone = new Promise<void>((resolve) => {
      child.stderr?.on("data", (chunk: Buffer) => {
        process.stderr.write(chunk);
        stderrTail = (stderrTail + chunk.toString("utf8")).slice(-STDERR_TAIL_CHARS);
      });
      child.stderr?.on("end", resolve);
      child.stderr?.on("error", () => resolve());
    });
    let lastError: string | undefined;
    let current: { taskId: string; since: number } | undefined;
    child.on("message", (raw) => {
      let message: ReturnType<typeof decodeFromWorker>;
      try {
        message = decodeFromWorker(raw);
      } catch (err) {
        lastError = (err as Error).message;
        child.kill("SIGKILL");
        return;
      }
      if (message.cmd === "ready") events.ready();
      else {
        if (current?.taskId === message.result.taskId) current = undefined;
        events.result(message.result);
      }
    });
    let exitReported = false;
    const reportExit = async (code: number | null, signal: NodeJS.Signals | null) => {
      if (exitReported) return;
      exitReported = true;
      const task = current;
      if (task) {
        // Orphans of the task (its worker is gone, so only the marker finds them).
        void endProcesses(
          findProcesses({ marker: `CONDUIT_TASK_ID=${task.taskId}`, since: task.since }),
          TASK_PROCESS_GRACE_MS,
        );
      }
      // A process the task started may hold stderr open: wait briefly, not for its end.
      await Promise.race([stderrDone, sleep(STDERR_DRAIN_MS)]);
      const cgroupOom = cgroup?.outOfMemory() ?? false;
      cgroup?.remove();
      const failure = task
        ? outOfMemoryError(task.taskId, { signal, stderrTail, cgroupOom }, options.limits)
        : undefined;
      events.exit(code, signal, lastError, failure);
    };
    // 'error' comes when the process cannot be spawned (then no 'exit' may follow) or a send fails.
    child.on("error", (err) => {
      lastError = err.message;
      if (child.pid === undefined) void reportExit(null, null);
    });
    child.on("exit", (code, signal) => void reportExit(code, signal));
    return {
      label: `worker process ${child.pid ?? "(not started)"}`,
      pid: child.pid ?? 0,
      send(task: EngineTask) {
        current = { taskId: task.taskId, since: ticksNow() };
        const message: ToWorker = { v: 1, cmd: "run", task };
        // A failed send means the worker just died; its exit reports the task as lost.
        child.send(message, (err) => {
          if (err) lastError = `could not send it task ${task.taskId}: ${err.message}`;
        });
      },
      kill(signal) {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      },
    };
  };
}
