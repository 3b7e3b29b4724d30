/**
 * ThreadPoolEngine: tasks run on worker threads inside the UEP process.
 * Cheapest to start and to reach (a message round trip is tens of
 * microseconds); a task that exits its thread (`process.exit` in a worker
 * thread ends only that thread) loses its worker, which is replaced.
 */
import { Worker } from "node:worker_threads";
import { type Options, parseOptions } from "../option-fields.js";
import { workerEntryPath } from "../worker/worker-entry.js";
import type { SpawnWorker } from "../worker/worker-pool.js";
import { decodeFromWorker, type ToWorker } from "../worker/worker-protocol.js";
import { THREAD_WORKER_LIMIT_FIELDS } from "./engine-options.js";
import type { EngineContext } from "./engine-types.js";
import { PoolEngine, poolEngineFields } from "./pool-engine.js";

export const THREAD_POOL_FIELDS = poolEngineFields("Worker threads.", THREAD_WORKER_LIMIT_FIELDS);

export type ThreadPoolOptions = Options<typeof THREAD_POOL_FIELDS>;

export class ThreadPoolEngine extends PoolEngine<ThreadPoolOptions> {
  readonly type = "ThreadPoolEngine";

  /** Checks the `engine:` options (without `type`) and builds the engine. */
  static parse(raw: Record<string, unknown>, path = "engine", source?: string): ThreadPoolEngine {
    return new ThreadPoolEngine(parseOptions(raw, path, "ThreadPoolEngine", THREAD_POOL_FIELDS, source));
  }

  protected spawner(context: EngineContext): SpawnWorker {
    const entry = workerEntryPath("thread-worker");
    return (events) => {
      // Each thread gets its own copy of the environment, so CONDUIT_TASK_ID is per worker.
      const worker = new Worker(entry, { env: context.env, execArgv: [] });
      let lastError: string | undefined;
      worker.on("message", (raw) => {
        let message: ReturnType<typeof decodeFromWorker>;
        try {
          message = decodeFromWorker(raw);
        } catch (err) {
          lastError = (err as Error).message;
          void worker.terminate();
          return;
        }
        if (message.cmd === "ready") events.ready();
        else events.result(message.result);
      });
      worker.on("error", (err) => {
        lastError = `${err.name}: ${err.message}`;
      });
      worker.on("exit", (code) => events.exit(code, null, lastError));
      return {
        label: `worker thread ${worker.threadId} (pid ${process.pid})`,
        pid: process.pid,
        send(task) {
          const message: ToWorker = { v: 1, cmd: "run", task };
          worker.postMessage(message);
        },
        kill() {
          // A thread has no signals: terminate() stops it even inside a long synchronous loop.
          void worker.terminate();
        },
      };
    };
  }
}
