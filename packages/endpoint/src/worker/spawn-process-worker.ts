/**
 * Starts worker processes (`dist/worker/process-worker.js`) for a WorkerPool:
 * forked with an IPC channel from the current Node binary. Used by the
 * ProcessPoolEngine in the UEP and by the block manager in each block.
 */
import { fork } from "node:child_process";
import type { EngineTask } from "../engines/engine-types.js";
import { workerEntryPath } from "./worker-entry.js";
import type { SpawnWorker } from "./worker-pool.js";
import { decodeFromWorker, type ToWorker } from "./worker-protocol.js";

export interface ProcessWorkerOptions {
  env: NodeJS.ProcessEnv;
}

export function processWorkerSpawner(options: ProcessWorkerOptions): SpawnWorker {
  const entry = workerEntryPath("process-worker");
  return (events) => {
    const child = fork(entry, [], {
      env: options.env,
      execPath: process.execPath,
      // Not the parent's flags: a test runner's or tsx's loaders have no business in a worker.
      execArgv: [],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      serialization: "json",
    });
    let lastError: string | undefined;
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
      else events.result(message.result);
    });
    let exitReported = false;
    const reportExit = (code: number | null, signal: NodeJS.Signals | null) => {
      if (exitReported) return;
      exitReported = true;
      events.exit(code, signal, lastError);
    };
    // 'error' comes when the process cannot be spawned (then no 'exit' may follow) or a send fails.
    child.on("error", (err) => {
      lastError = err.message;
      if (child.pid === undefined) reportExit(null, null);
    });
    child.on("exit", reportExit);
    return {
      label: `worker process ${child.pid ?? "(not started)"}`,
      pid: child.pid ?? 0,
      send(task: EngineTask) {
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
