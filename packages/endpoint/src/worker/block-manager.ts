/**
 * Entry of a block manager: one per block of a HighThroughputEngine, started
 * by the engine's provider (a local shell, a Slurm job, …) after worker_init.
 * It forks its worker processes, waits until they are ready, connects back to
 * the interchange with its block id and the engine's secret, and runs what it
 * is sent. It exits when the interchange says so or its connection closes
 * (the UEP is gone), and its workers go with it.
 *
 * The interchange may send more tasks than there are workers (prefetch): the
 * extra ones wait here and start in the order they came as workers free up.
 * A task is given to a worker only after the answers of the tasks before it
 * have been written, so the interchange can tell, if this block dies, which
 * of its tasks never started (see interchange.ts).
 *
 *   node block-manager.js --host 127.0.0.1 --port 41234 --block-id 0 --workers 2 --secret-file <path>
 */
import { readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { hostname } from "node:os";
import { parseArgs } from "node:util";
import type { EngineResult, EngineTask } from "../engine-task.js";
import { createLogger } from "../logging.js";
import { Fifo } from "./fifo.js";
import { encodeFrame, FrameReader } from "./frames.js";
import {
  type BlockMessage,
  decodeInterchangeMessage,
  type InterchangeMessage,
  intoBatches,
  MAX_FRAME_CHARS,
} from "./interchange-protocol.js";
import { processWorkerSpawner } from "./spawn-process-worker.js";
import { WorkerCgroups } from "./worker-cgroups.js";
import { LIMIT_ARG_OPTIONS, limitsFromArgs } from "./worker-limits.js";
import { WorkerPool } from "./worker-pool.js";

/** Workers get this long to exit on SIGTERM before SIGKILL. */
const WORKER_GRACE_MS = 2000;

const { values } = parseArgs({
  options: {
    host: { type: "string" },
    port: { type: "string" },
    "block-id": { type: "string" },
    workers: { type: "string" },
    "secret-file": { type: "string" },
    ...LIMIT_ARG_OPTIONS,
  },
});
const limits = limitsFromArgs(values);
const host = values.host ?? "127.0.0.1";
const port = Number(values.port);
const blockId = values["block-id"] ?? "";
const workers = Number(values.workers ?? "1");
const secretFile = values["secret-file"] ?? "";
if (!Number.isInteger(port) || blockId === "" || !Number.isInteger(workers) || workers < 1 || secretFile === "") {
  process.stderr.write(
    "usage: block-manager.js --host HOST --port PORT --block-id ID --workers N --secret-file PATH (started by a HighThroughputEngine, not by hand)\n",
  );
  process.exit(2);
}

// Its stderr is the block's stderr file in submit_scripts/: what went wrong is read there.
const log = createLogger({ name: `block ${blockId}`, console: true });

let socket: Socket | undefined;
let stopping = false;

/** Tasks from the interchange not yet given to the pool (prefetched), in the order they came. */
const prefetched = new Fifo<EngineTask>();
/** Tasks given to the pool and not yet answered: at most one per worker, so none waits in the pool's own queue for long. */
let inPool = 0;
/** Answers not yet written: results go back together in one frame. */
let results: EngineResult[] = [];
let losses: BlockMessage[] = [];
let pumpQueued = false;

const pool = new WorkerPool({
  size: workers,
  spawn: processWorkerSpawner({
    env: { ...process.env, CONDUIT_BLOCK_ID: blockId, CONDUIT_WORKER_COUNT: String(workers) },
    limits,
    cgroups: limits.max_memory_per_worker ? WorkerCgroups.open(limits.max_memory_per_worker, log) : undefined,
  }),
  log,
  onResult: (result) => {
    inPool--;
    results.push(result);
    schedulePump();
  },
  onLost: (task, reason) => {
    inPool--;
    losses.push({ v: 1, cmd: "lost", taskId: task.taskId, reason });
    schedulePump();
  },
  onStartFailure: (tasks, reason) => {
    log.error(`${reason}; stopping block ${blockId}.`);
    inPool -= tasks.length;
    for (const task of [...tasks, ...prefetched.drain()]) {
      losses.push({ v: 1, cmd: "lost", taskId: task.taskId, reason: `${reason} in block ${blockId}` });
    }
    flush();
    void stop(1);
  },
});

/**
 * While other workers are busy, answers wait for the end of this turn of the
 * event loop, so those that come in together (from several workers) leave in
 * one write; with no other worker busy there is nothing to wait for.
 */
function schedulePump(): void {
  if (inPool === 0) {
    pump();
    return;
  }
  if (pumpQueued) return;
  pumpQueued = true;
  setImmediate(() => {
    pumpQueued = false;
    pump();
  });
}

/** Writes the pending answers, then gives waiting tasks to free workers (in that order: see the header). */
function pump(): void {
  flush();
  while (!stopping && inPool < workers && prefetched.length > 0) {
    inPool++;
    pool.submit(prefetched.shift() as EngineTask);
  }
}

function flush(): void {
  if (results.length === 0 && losses.length === 0) return;
  const frames = losses.map(encodeFrame);
  for (const batch of intoBatches(results))
    frames.push(encodeFrame({ v: 1, cmd: "results", results: batch } satisfies BlockMessage));
  results = [];
  losses = [];
  if (!socket || socket.destroyed) return;
  // One write for them all (not one joined string: big results could exceed V8's longest string).
  socket.cork();
  for (const frame of frames) socket.write(frame);
  socket.uncork();
}

function send(message: BlockMessage): void {
  if (socket && !socket.destroyed) socket.write(encodeFrame(message));
}

async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  await pool.shutdown(WORKER_GRACE_MS);
  flush();
  socket?.end();
  process.exit(code);
}

process.on("SIGTERM", () => void stop(0));
process.on("SIGINT", () => void stop(0));

async function main(): Promise<void> {
  const secret = readFileSync(secretFile, "utf8").trim();
  // Workers first: a block whose workers cannot start never registers, and the engine reports it as failed to start.
  await pool.start();
  if (stopping) return;
  const conn = connect({ host, port, noDelay: true });
  socket = conn;
  conn.setKeepAlive(true, 10_000);
  let registered = false;
  const reader = new FrameReader(MAX_FRAME_CHARS, (raw) => {
    const message: InterchangeMessage = decodeInterchangeMessage(raw);
    switch (message.cmd) {
      case "registered":
        registered = true;
        log.info(`Registered with the interchange at ${host}:${port} with ${workers} worker(s).`);
        break;
      case "rejected":
        log.error(`The interchange at ${host}:${port} rejected block ${blockId}: ${message.reason}.`);
        void stop(1);
        break;
      case "run":
        for (const task of message.tasks) prefetched.push(task);
        pump();
        break;
      case "shutdown":
        log.info("The interchange asked this block to shut down.");
        void stop(0);
        break;
    }
  });
  conn.on("connect", () =>
    send({
      v: 1,
      cmd: "register",
      blockId,
      secret,
      pid: process.pid,
      hostname: hostname(),
      workers,
      nodeVersion: process.version,
    }),
  );
  conn.on("data", (chunk) => {
    try {
      reader.push(chunk);
    } catch (err) {
      log.error(`Bad data from the interchange (${(err as Error).message}); stopping.`);
      void stop(1);
    }
  });
  conn.on("error", (err) => log.error(`Connection to the interchange at ${host}:${port}: ${err.message}.`));
  conn.on("close", () => {
    if (stopping) return;
    if (!registered) log.error(`Could not register with the interchange at ${host}:${port}; stopping.`);
    else log.info("The interchange closed the connection (the user endpoint stopped); stopping.");
    void stop(registered ? 0 : 1);
  });
}

main().catch((err: Error) => {
  if (stopping) return;
  log.error(`Block ${blockId} could not start: ${err.message}`);
  void stop(1);
});
