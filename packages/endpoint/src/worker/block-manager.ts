/**
 * Entry of a block manager: one per block of a HighThroughputEngine, started
 * by the engine's provider (a local shell, a Slurm job, …) after worker_init.
 * It forks its worker processes, waits until they are ready, tries every
 * address it was given for the interchange and uses the first that answers
 * (a node may reach the UEP's host on only some of its networks), connects
 * over TLS with the engine's client certificate (unless `encrypted: false`),
 * registers with its block id, the engine's secret and its versions, and runs
 * what it is sent. It exits when the interchange says so, when its connection
 * closes (the UEP is gone), or when the interchange stays silent beyond the
 * heartbeat threshold; its workers go with it.
 *
 * The interchange may send more tasks than there are workers (prefetch): the
 * extra ones wait here and start in the order they came as workers free up.
 * A task is given to a worker only after the answers of the tasks before it
 * have been written, so the interchange can tell, if this block dies, which
 * of its tasks never started (see interchange.ts).
 *
 * With `--mem-per-worker GB` it runs no more workers than the node's
 * available memory holds; with `--cpu-affinity` each worker starts under
 * `taskset -c` (see cpu-affinity.ts); with `--drain-period S` it tells the
 * interchange after S seconds that it drains: it gets no new tasks, finishes
 * the ones it holds, and exits once the interchange answers that none is left.
 *
 *   node block-manager.js --addresses 10.0.0.1,127.0.0.1 --port 41234 --block-id 0 --workers 2 \
 *     --secret-file <path> [--tls-dir <dir>] --heartbeat-period 30 --heartbeat-threshold 120
 */

import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { connect, isIPv6, type Socket } from "node:net";
import { availableParallelism, freemem, hostname } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { EngineResult, EngineTask } from "../engine-task.js";
import { createLogger, logDebugFromEnv } from "../logging.js";
import { CONDUIT_VERSION } from "../version.js";
import { allowedCpus, cpuListText, parseCpuAffinity, workerCpuSets } from "./cpu-affinity.js";
import { Fifo } from "./fifo.js";
import { encodeFrame, FrameReader } from "./frames.js";
import {
  type BlockMessage,
  decodeInterchangeMessage,
  INTERCHANGE_PROTOCOL_VERSION,
  type InterchangeMessage,
  intoBatches,
  MAX_FRAME_CHARS,
  TLS_FILES,
} from "./interchange-protocol.js";
import { SANDBOX_ROOT_ENV } from "./sandbox-root.js";
import { processWorkerSpawner } from "./spawn-process-worker.js";
import { WorkerCgroups } from "./worker-cgroups.js";
import { LIMIT_ARG_OPTIONS, limitsFromArgs } from "./worker-limits.js";
import { WorkerPool } from "./worker-pool.js";

/** Workers get this long to exit on SIGTERM before SIGKILL. */
const WORKER_GRACE_MS = 2000;
/** An address that has not answered within this time (or the heartbeat threshold, if shorter) counts as unreachable. */
const PROBE_TIMEOUT_MS = 10_000;
/**
 * A connection made while the workers started is used for the registration
 * only if younger than this: the interchange closes one that has not
 * registered within 10 s.
 */
const FRESH_CONNECTION_MS = 5000;

const { values } = parseArgs({
  options: {
    addresses: { type: "string" },
    port: { type: "string" },
    socket: { type: "string" },
    "block-id": { type: "string" },
    workers: { type: "string" },
    "secret-file": { type: "string" },
    "tls-dir": { type: "string" },
    "heartbeat-period": { type: "string" },
    "heartbeat-threshold": { type: "string" },
    "cores-per-worker": { type: "string" },
    accelerators: { type: "string" },
    "working-dir": { type: "string" },
    "sandbox-dir": { type: "string" },
    "mem-per-worker": { type: "string" },
    "cpu-affinity": { type: "string" },
    "drain-period": { type: "string" },
    ...LIMIT_ARG_OPTIONS,
  },
});
const limits = limitsFromArgs(values);
const addresses = (values.addresses ?? "").split(",").filter((a) => a !== "");
const port = Number(values.port);
const blockId = values["block-id"] ?? "";
const maxWorkers = Number(values.workers ?? "1");
const coresPerWorker = Number(values["cores-per-worker"] ?? "1");
const accelerators = (values.accelerators ?? "").split(",").filter((a) => a !== "");
const secretFile = values["secret-file"] ?? "";
const tlsDir = values["tls-dir"];
const heartbeatMs = Number(values["heartbeat-period"] ?? "30") * 1000;
const thresholdMs = Number(values["heartbeat-threshold"] ?? "120") * 1000;
const memPerWorker = values["mem-per-worker"] === undefined ? undefined : Number(values["mem-per-worker"]);
const drainMs = values["drain-period"] === undefined ? undefined : Number(values["drain-period"]) * 1000;
if (
  addresses.length === 0 ||
  !Number.isInteger(port) ||
  blockId === "" ||
  !Number.isInteger(maxWorkers) ||
  maxWorkers < 1 ||
  !(coresPerWorker > 0) ||
  secretFile === "" ||
  !(heartbeatMs > 0 && thresholdMs > 0) ||
  (memPerWorker !== undefined && !(memPerWorker > 0)) ||
  (drainMs !== undefined && !(drainMs > 0))
) {
  process.stderr.write(
    "usage: block-manager.js --addresses A[,B…] --port PORT --block-id ID --workers N --secret-file PATH [--tls-dir DIR] --heartbeat-period S --heartbeat-threshold S [--cores-per-worker C] [--accelerators A,B…] [--working-dir DIR] [--sandbox-dir DIR] [--mem-per-worker GB] [--cpu-affinity A] [--drain-period S] (started by a HighThroughputEngine, not by hand)\n",
  );
  process.exit(2);
}

// Its stderr is the block's stderr file in submit_scripts/: what went wrong is read there.
// DEBUG lines when the UEP runs with `debug: true` (it sets CONDUIT_LOG_DEBUG for its blocks).
const log = createLogger({
  name: `block ${blockId}`,
  console: true,
  debug: logDebugFromEnv(),
  fields: { block_id: blockId },
});

/** Memory free for workers on this node (bytes): what the OS can give, within this job's cgroup limit if any. */
function availableMemory(): number {
  const limit = process.constrainedMemory();
  return limit > 0 ? Math.min(freemem(), limit) : freemem();
}

/** As Parsl's managers: as many workers as the node's cores, memory and accelerators allow, up to max_workers_per_node. */
const workers = Math.max(
  1,
  Math.min(
    maxWorkers,
    Math.floor(availableParallelism() / coresPerWorker),
    memPerWorker === undefined ? Number.POSITIVE_INFINITY : Math.floor(availableMemory() / 2 ** 30 / memPerWorker),
    accelerators.length > 0 ? accelerators.length : Number.POSITIVE_INFINITY,
  ),
);
if (memPerWorker !== undefined && availableMemory() / 2 ** 30 < memPerWorker) {
  log.warn(
    `This node has ${(availableMemory() / 2 ** 30).toFixed(1)} GB available, less than mem_per_worker (${memPerWorker} GB); running one worker anyway.`,
  );
}

/** Each worker's CPUs (cpu_affinity), set in main() before the workers start; none: not pinned. */
let cpuSets: number[][] | undefined;

/** Works out cpu_affinity for this node; throws one sentence when it cannot apply. */
function planAffinity(): void {
  const text = values["cpu-affinity"];
  if (text === undefined) return;
  let affinity: ReturnType<typeof parseCpuAffinity>;
  try {
    affinity = parseCpuAffinity(text);
  } catch (err) {
    throw new Error(`cpu_affinity ${JSON.stringify(text)} ${(err as Error).message}`);
  }
  cpuSets = workerCpuSets(affinity, workers, allowedCpus());
  if (cpuSets && spawnSync("taskset", ["-p", String(process.pid)], { stdio: "ignore" }).status !== 0) {
    throw new Error(
      `cpu_affinity needs the taskset command (util-linux) on ${hostname()}, which is not on the PATH; install it (or add it to the PATH in worker_init), or set cpu_affinity: none`,
    );
  }
  if (cpuSets)
    log.info(
      `cpu_affinity ${text}: ${cpuSets.map((cpus, rank) => `worker ${rank} on CPUs ${cpuListText(cpus)}`).join(", ")}.`,
    );
}

const workingDir = values["working-dir"];
if (workingDir) {
  // Workers inherit this directory: tasks start in it.
  mkdirSync(workingDir, { recursive: true, mode: 0o700 });
  process.chdir(workingDir);
}

/** A worker's environment: its rank, and its own accelerator when the node has some. */
function workerEnv(rank: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CONDUIT_BLOCK_ID: blockId,
    CONDUIT_WORKER_COUNT: String(workers),
    CONDUIT_WORKER_RANK: String(rank),
  };
  const cpus = cpuSets?.[rank];
  if (cpus) {
    // As upstream: OpenMP threads follow the worker's CPUs.
    env.OMP_NUM_THREADS = String(cpus.length);
    env.GOMP_CPU_AFFINITY = cpuListText(cpus);
  }
  if (values["sandbox-dir"]) env[SANDBOX_ROOT_ENV] = values["sandbox-dir"];
  const device = accelerators[rank];
  if (device !== undefined) {
    env.CUDA_VISIBLE_DEVICES = device;
    env.ROCR_VISIBLE_DEVICES = device;
    env.ZE_AFFINITY_MASK = device;
    env.ZE_ENABLE_PCI_ID_DEVICE_ORDER = "1";
  }
  return env;
}

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
    env: workerEnv,
    limits,
    cgroups: limits.max_memory_per_worker ? WorkerCgroups.open(limits.max_memory_per_worker, log) : undefined,
    prefix: (rank) => {
      const cpus = cpuSets?.[rank];
      return cpus ? ["taskset", "-c", cpuListText(cpus)] : [];
    },
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
    const task = prefetched.shift() as EngineTask;
    log.debug(`Task ${task.taskId} given to a worker`, { task_id: task.taskId, reqId: task.requestId });
    pool.submit(task);
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
  const tls = tlsDir ? readTls(tlsDir) : undefined;
  planAffinity();
  // Workers first: a block whose workers cannot start never registers, and the engine reports it as failed to start.
  const workersReady = pool.start();
  // Meanwhile the interchange is reached and the TLS handshake made (not the registration: that waits for the workers).
  const early = reachInterchange(tls);
  early.catch(() => undefined); // awaited below, once the workers are ready
  await workersReady;
  if (stopping) {
    void early.then(
      ({ conn }) => conn.destroy(),
      () => undefined,
    );
    return;
  }
  let reached = await early;
  // Closed meanwhile, or old enough that the interchange may close it unregistered: reach it once more.
  if (reached.conn.destroyed || Date.now() - reached.at > FRESH_CONNECTION_MS) {
    reached.conn.destroy();
    reached = await reachInterchange(tls);
  }
  const { conn, where, unix, secured } = reached;
  log.info(
    unix
      ? `Reached the interchange at its Unix socket ${where}.`
      : `Reached the interchange at ${where}${addresses.length > 1 ? ` (tried ${addresses.map((a) => hostPort(a, port)).join(", ")})` : ""}${tls ? " (TLS)" : ""}.`,
  );
  socket = conn;
  conn.setKeepAlive(true, 10_000);
  let registered = false;
  let lastHeard = Date.now();
  const heartbeat = setInterval(() => {
    const silent = Date.now() - lastHeard;
    if (silent > thresholdMs) {
      log.error(
        `Missing contact with the interchange at ${where} for ${Math.round(silent / 1000)} s (beyond heartbeat_threshold); stopping.`,
      );
      void stop(1);
      return;
    }
    // Never before the registration: the interchange reads nothing else first.
    if (registered) send({ v: 1, cmd: "heartbeat" });
  }, heartbeatMs);
  heartbeat.unref();
  const reader = new FrameReader(MAX_FRAME_CHARS, (raw) => {
    const message: InterchangeMessage = decodeInterchangeMessage(raw);
    switch (message.cmd) {
      case "registered":
        registered = true;
        log.info(`Registered with the interchange at ${where} with ${workers} worker(s).`);
        if (drainMs !== undefined) {
          const timer = setTimeout(() => {
            log.info(
              `drain_period (${drainMs / 1000} s) has passed: draining (no new tasks; finishing the ones held).`,
            );
            send({ v: 1, cmd: "drain" });
          }, drainMs);
          timer.unref();
        }
        break;
      case "drained":
        log.info(`Drained: every task this block held is answered; exiting.`);
        void stop(0);
        break;
      case "rejected":
        log.error(`The interchange at ${where} rejected block ${blockId}: ${message.reason}.`);
        void stop(1);
        break;
      case "heartbeat":
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
  const register = () =>
    send({
      v: INTERCHANGE_PROTOCOL_VERSION,
      cmd: "register",
      blockId,
      secret,
      pid: process.pid,
      hostname: hostname(),
      workers,
      nodeVersion: process.version,
      conduitVersion: CONDUIT_VERSION,
      via: where,
    });
  if (secured) void secured.then(register);
  else register();
  conn.on("data", (chunk) => {
    lastHeard = Date.now();
    try {
      reader.push(chunk);
    } catch (err) {
      log.error(`Bad data from the interchange (${(err as Error).message}); stopping.`);
      void stop(1);
    }
  });
  conn.on("error", (err) => log.error(`Connection to the interchange at ${where}: ${err.message}.`));
  conn.on("close", () => {
    clearInterval(heartbeat);
    if (stopping) return;
    if (!registered) log.error(`Could not register with the interchange at ${where}; stopping.`);
    else log.info("The interchange closed the connection (the user endpoint stopped); stopping.");
    void stop(registered ? 0 : 1);
  });
}

/** What reachInterchange found: the connection (TLS over TCP when encrypted), and when it was made. */
interface Reached {
  conn: Socket;
  where: string;
  unix: boolean;
  /** TLS: resolves at the end of the handshake (it may fail: the connection then errors and closes). */
  secured: Promise<void> | undefined;
  at: number;
}

/**
 * The interchange's Unix socket when there is one, else the first of its
 * addresses that answers, with the TLS handshake started over TCP when the
 * engine is encrypted. Errors and a close before main() listens are kept for
 * it: a connection that died while the workers started is seen as destroyed.
 */
async function reachInterchange(tls: ReturnType<typeof readTls> | undefined): Promise<Reached> {
  const unix = values.socket ? await connectUnix(values.socket) : undefined;
  const found = unix ?? (await probe(addresses, port, Math.min(PROBE_TIMEOUT_MS, thresholdMs)));
  const where = unix ? unix.address : hostPort(found.address, port);
  let conn: Socket = found.socket;
  let secured: Promise<void> | undefined;
  // No host name check: the interchange's certificate is the only one its CA, made for this engine alone, ever issued.
  // The Unix socket needs no TLS: only the engine's user can open it (mode 0600), and the secret is checked as on TCP.
  if (tls && !unix) {
    const { connect: connectTls } = await import("node:tls");
    const secure = connectTls({
      socket: found.socket,
      ...tls,
      checkServerIdentity: () => undefined,
      minVersion: "TLSv1.3",
    });
    secured = new Promise((resolve) => secure.once("secureConnect", () => resolve()));
    conn = secure;
  }
  // Until main() adds its own listener: an error here must not end the process (main() sees the connection destroyed).
  conn.on("error", () => undefined);
  return { conn, where, unix: unix !== undefined, secured, at: Date.now() };
}

function readTls(dir: string): { ca: Buffer; cert: Buffer; key: Buffer } {
  try {
    return {
      ca: readFileSync(join(dir, TLS_FILES.ca)),
      cert: readFileSync(join(dir, TLS_FILES.clientCert)),
      key: readFileSync(join(dir, TLS_FILES.clientKey)),
    };
  } catch (err) {
    throw new Error(
      `cannot read the interchange's certificates in ${dir} (${(err as Error).message}); the node must see the user endpoint's folder (a shared file system), or set encrypted: false`,
    );
  }
}

/**
 * The interchange's Unix socket (a block in a container without a network
 * sees it in the bind-mounted run folder); undefined, and the addresses are
 * tried, when it cannot be opened (a block on another node).
 */
function connectUnix(path: string): Promise<{ address: string; socket: Socket } | undefined> {
  return new Promise((resolve) => {
    const candidate = connect({ path });
    candidate.once("connect", () => resolve({ address: `unix:${path}`, socket: candidate }));
    candidate.once("error", (err: NodeJS.ErrnoException) => {
      log.info(
        `The interchange's Unix socket ${path} cannot be opened here (${err.code ?? err.message}); trying its addresses.`,
      );
      resolve(undefined);
    });
  });
}

function hostPort(address: string, port: number): string {
  return isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
}

/**
 * Connects to every address at once and keeps the first connection made;
 * rejects naming each address and why it failed when none answers in time.
 */
function probe(candidates: string[], port: number, timeoutMs: number): Promise<{ address: string; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const failures = new Map<string, string>();
    const sockets: Socket[] = [];
    let settled = false;
    const settle = () => {
      settled = true;
      clearTimeout(timer);
    };
    const giveUp = () => {
      settle();
      for (const s of sockets) s.destroy();
      const tried = candidates.map(
        (a) => `${hostPort(a, port)} (${failures.get(a) ?? `no answer in ${timeoutMs / 1000} s`})`,
      );
      reject(
        new Error(
          `could not reach the interchange at any of ${tried.join(", ")}; set the engine's address to one this node (${hostname()}) can reach, and check that no firewall blocks port ${port}`,
        ),
      );
    };
    const timer = setTimeout(giveUp, timeoutMs);
    for (const address of candidates) {
      const candidate = connect({ host: address, port, noDelay: true });
      sockets.push(candidate);
      candidate.once("connect", () => {
        if (settled) return;
        settle();
        for (const s of sockets) if (s !== candidate) s.destroy();
        resolve({ address, socket: candidate });
      });
      candidate.once("error", (err: NodeJS.ErrnoException) => {
        if (settled) return;
        failures.set(address, err.code ?? err.message);
        if (failures.size === candidates.length) giveUp();
      });
    }
  });
}

main().catch((err: Error) => {
  if (stopping) return;
  log.error(`Block ${blockId} could not start: ${err.message}`);
  void stop(1);
});
