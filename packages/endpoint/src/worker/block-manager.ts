/**
 * Entry of a block manager: one per block of a HighThroughputEngine, started
 * by the engine's provider (a local shell, a Slurm job, …) after worker_init.
 * It forks its worker processes, waits until they are ready, connects back to
 * the interchange with its block id and the engine's secret, and runs what it
 * is sent. It exits when the interchange says so or its connection closes
 * (the UEP is gone), and its workers go with it.
 *
 *   node block-manager.js --host 127.0.0.1 --port 41234 --block-id 0 --workers 2 --secret-file <path>
 */
import { readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { hostname } from "node:os";
import { parseArgs } from "node:util";
import { createLogger } from "../logging.js";
import { encodeFrame, FrameReader } from "./frames.js";
import {
  type BlockMessage,
  decodeInterchangeMessage,
  type InterchangeMessage,
  MAX_FRAME_CHARS,
} from "./interchange-protocol.js";
import { processWorkerSpawner } from "./spawn-process-worker.js";
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
  },
});
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

const pool = new WorkerPool({
  size: workers,
  spawn: processWorkerSpawner({
    env: { ...process.env, CONDUIT_BLOCK_ID: blockId, CONDUIT_WORKER_COUNT: String(workers) },
  }),
  log,
  onResult: (result) => send({ v: 1, cmd: "result", result }),
  onLost: (task, reason) => send({ v: 1, cmd: "lost", taskId: task.taskId, reason }),
  onStartFailure: (tasks, reason) => {
    log.error(`${reason}; stopping block ${blockId}.`);
    for (const task of tasks) send({ v: 1, cmd: "lost", taskId: task.taskId, reason: `${reason} in block ${blockId}` });
    void stop(1);
  },
});

function send(message: BlockMessage): void {
  if (socket && !socket.destroyed) socket.write(encodeFrame(message));
}

async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  await pool.shutdown(WORKER_GRACE_MS);
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
        pool.submit(message.task);
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
