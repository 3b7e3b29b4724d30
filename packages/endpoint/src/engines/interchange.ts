/**
 * The interchange of a HighThroughputEngine: a TLS (or, with `encrypted:
 * false`, plain TCP) server inside the UEP that block managers connect back
 * to, on loopback or on the engine's `address`. It keeps the FIFO queue of
 * tasks and sends them to blocks with idle workers first; only when no block
 * has one does it send a block up to `prefetch` more, which its block manager
 * queues and starts as its workers free up. So a block busy with long tasks
 * holds up at most `prefetch` short ones that another block could run (or,
 * right after a run of short tasks, about PREFETCH_WINDOW_MS of them: below).
 *
 * A block starts its tasks in the order they were sent, and gives a task to a
 * worker only after it has written the answers of the tasks before it. So of
 * the tasks a block has not answered, only the first `workers` can have
 * started: when a block is lost, the others are known never to have run.
 *
 * A block that runs through its tasks faster than they can be refilled (short
 * tasks: the refill's round trip, manager → interchange → manager, is then as
 * long as several tasks) may hold more than `prefetch`: as many as it answers
 * in about PREFETCH_WINDOW_MS at its recent rate, at most MAX_PREFETCH_PER_WORKER
 * per worker (see prefetchDepth). A block running long tasks answers a few a
 * second and so holds `prefetch` beyond its workers, as configured; with
 * `prefetch` 0 a block only ever gets tasks for its idle workers.
 *
 * A task counts as started once it is sent to a block (prefetched ones
 * too); until then `remove` can still take it out of the queue (a cancel).
 *
 * A connection counts only once its TLS handshake presented a certificate of
 * the engine's own CA (when encrypted) and its first frame registered it with
 * the engine's secret, a block id the engine is waiting for and versions the
 * engine accepts. A registered block that sends nothing (not even a
 * heartbeat) for `heartbeatThresholdMs` is dropped as lost: its node may be
 * down or cut off without its connection ever closing.
 *
 * Draining: a block manager past its drain_period sends `drain`, and the
 * engine may `hold` a partly idle block; either way the block gets no new
 * tasks, and once it has answered every task it holds the interchange says
 * `drained` to the one, and `emptied` to the engine for the other.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { chmod } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import type { EngineResult, EngineTask } from "../engine-task.js";
import type { Logger } from "../logging.js";
import { Fifo } from "../worker/fifo.js";
import { encodeFrame, FrameReader } from "../worker/frames.js";
import {
  type BlockMessage,
  decodeBlockMessage,
  type InterchangeMessage,
  intoBatches,
  MAX_FRAME_CHARS,
  MAX_REGISTRATION_CHARS,
  type Registration,
} from "../worker/interchange-protocol.js";

/** A connection that has not registered within this time is closed. */
const REGISTRATION_TIMEOUT_MS = 10_000;
/** A fast block may hold about this much of its work (at its recent rate) beyond its workers. */
export const PREFETCH_WINDOW_MS = 20;
/** …but never more than this many tasks per worker beyond them. */
export const MAX_PREFETCH_PER_WORKER = 32;
/** A block's rate is measured over windows at least this long. */
const RATE_WINDOW_MS = 10;

/**
 * Tasks a block may hold beyond its workers: `prefetch` (prefetch_capacity),
 * or, for a block answering `ratePerSecond` tasks, what it answers in
 * PREFETCH_WINDOW_MS, up to MAX_PREFETCH_PER_WORKER per worker. With
 * `prefetch` 0, always 0.
 */
export function prefetchDepth(prefetch: number, workers: number, ratePerSecond: number): number {
  if (prefetch === 0) return 0;
  const byRate = Math.ceil((ratePerSecond * PREFETCH_WINDOW_MS) / 1000);
  return Math.max(prefetch, Math.min(byRate, MAX_PREFETCH_PER_WORKER * workers));
}

/** A registered block manager. */
export interface ConnectedBlock {
  readonly blockId: string;
  readonly pid: number;
  readonly hostname: string;
  /** The interchange address (host:port) it connected to. */
  readonly via: string;
  readonly workers: number;
  /** Tasks sent to it and not yet answered, in the order they were sent (running first, then prefetched). */
  readonly inFlight: Map<string, EngineTask>;
  /** When it last had no task (ms since the epoch). */
  idleSince: number;
  /** Told to shut down: gets no more tasks. */
  draining: boolean;
}

export interface InterchangeOptions {
  /** What a block manager must present in its registration. */
  secret: string;
  /** Tasks a block may hold beyond one per worker (prefetch_capacity). */
  prefetch: number;
  /** The server's certificate and key and the CA its clients' certificates must chain to; none: plain TCP. */
  tls?: { ca: Buffer; cert: Buffer; key: Buffer };
  /** How often blocks send heartbeats (the interchange checks for silent ones as often). */
  heartbeatPeriodMs: number;
  /** A registered block silent for this long is dropped as lost. */
  heartbeatThresholdMs: number;
  /** The clock blocks' rates are measured with (ms); tests pass their own. Default performance.now. */
  now?: () => number;
}

/** Where to listen: one port, or the first free one of a range (inclusive); neither: any free port. */
export interface ListenOn {
  host: string;
  port?: number;
  range?: readonly [number, number];
}

export interface InterchangeEvents {
  /** Why this block may not register (an unknown block id, other versions), or undefined to accept it. */
  admit(registration: Registration): string | undefined;
  connected(block: ConnectedBlock): void;
  /** Worker slots of blocks still starting: that many queued tasks are kept for them rather than prefetched. */
  reserved(): number;
  /** These tasks were just sent to block `blockId` (to a worker, or prefetched): they count as started. */
  dispatched(tasks: EngineTask[], blockId: string): void;
  result(result: EngineResult): void;
  /** A worker of a block died while running `task`. */
  lost(task: EngineTask, reason: string): void;
  /**
   * A registered block's connection closed. `started` are the tasks it had not
   * answered and may have started (at most one per worker); `unstarted` are the
   * ones it held and had certainly not started, in order. `why` is set when the
   * interchange dropped it itself (no heartbeat within the threshold).
   */
  closed(block: ConnectedBlock, started: EngineTask[], unstarted: EngineTask[], why?: string): void;
  /** The block's manager reached its drain_period: it gets no new tasks and exits once it has answered the ones it holds. */
  draining?(block: ConnectedBlock): void;
  /** A block held with `hold` has answered every task it held. */
  emptied?(block: ConnectedBlock): void;
}

interface Connection extends ConnectedBlock {
  socket: Socket;
  /** When it last sent a frame (ms since the epoch). */
  lastHeard: number;
  /** Why the interchange dropped it, if it did. */
  dropped?: string;
  /** It sent `drain`: it is told `drained` once it holds no task. */
  drainAsked?: boolean;
  /** The engine held it: the engine is told once it holds no task. */
  held?: boolean;
  /** Tasks it may hold beyond its workers now (prefetchDepth). */
  extra: number;
  /** Results since `windowStart` (performance.now()), to measure its rate. */
  windowResults: number;
  windowStart: number;
}

export class Interchange {
  private readonly server: Server;
  private readonly queue = new Fifo<EngineTask>();
  private readonly connections = new Map<string, Connection>();
  private readonly sockets = new Set<Socket>();
  private readonly secretDigest: Buffer;
  private readonly prefetch: number;
  private readonly heartbeatTimer: NodeJS.Timeout;
  private dispatchQueued = false;
  private readonly now: () => number;
  /** The Unix socket server (listenUnix), if any. */
  private unixServer: Server | undefined;

  constructor(
    private readonly options: InterchangeOptions,
    private readonly events: InterchangeEvents,
    private readonly log: Logger,
  ) {
    this.secretDigest = digest(options.secret);
    this.prefetch = options.prefetch;
    this.now = options.now ?? (() => performance.now());
    const tls = options.tls;
    if (tls) {
      // Both sides verified: a peer without a certificate of this engine's CA never gets to send a frame.
      this.server = createTlsServer(
        {
          ...tls,
          requestCert: true,
          rejectUnauthorized: true,
          minVersion: "TLSv1.3",
          handshakeTimeout: REGISTRATION_TIMEOUT_MS,
        },
        (socket) => this.accept(socket),
      );
      this.server.on("tlsClientError", (err: Error & { reason?: string }, socket) =>
        this.log.warn(
          `The interchange refused a TLS connection from ${socket.remoteAddress ?? "an unknown address"}: ${err.reason ?? err.message}.`,
        ),
      );
    } else {
      this.server = createServer({ noDelay: true }, (socket) => this.accept(socket));
    }
    this.heartbeatTimer = setInterval(() => this.dropSilentBlocks(), options.heartbeatPeriodMs);
    this.heartbeatTimer.unref();
  }

  /** Listens on `on.host` and the given port, the first free one of the range, or any free one; returns it. */
  async listen(on: ListenOn): Promise<number> {
    const ports = on.port !== undefined ? [on.port] : on.range ? shuffledRange(on.range) : [0];
    let last: Error | undefined;
    for (const port of ports) {
      try {
        return await this.listenOn(on.host, port);
      } catch (err) {
        last = err as Error;
        if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE") break;
      }
    }
    const which = on.range ? `any port of ${on.range[0]}-${on.range[1]}` : `port ${ports[0]}`;
    throw new Error(`the interchange could not listen on ${on.host} ${which}: ${last?.message}`);
  }

  private listenOn(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        this.server.off("error", reject);
        resolve((this.server.address() as { port: number }).port);
      });
    });
  }

  /**
   * Also listens on a Unix socket at `path`, for blocks in containers
   * without a network that see the run folder (bind-mounted). Plain, not
   * TLS: the socket file is made mode 0600 (only the engine's user, or a
   * container running as that user, can open it), the same protection as
   * the TLS client key, a 0600 file beside it; a registration still needs
   * the secret. The same block protocol runs over it.
   */
  async listenUnix(path: string): Promise<void> {
    const server = createServer({ noDelay: true }, (socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(path, () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.unixServer = server;
    await chmod(path, 0o600);
  }

  /** Tasks in the queue, not yet sent to a block. */
  get queued(): number {
    return this.queue.length;
  }

  /** Tasks waiting for a worker: queued here, or prefetched by a block whose workers are busy. */
  get waiting(): number {
    let prefetched = 0;
    for (const c of this.connections.values()) prefetched += Math.max(0, c.inFlight.size - c.workers);
    return this.queue.length + prefetched;
  }

  submit(task: EngineTask): void {
    this.queue.push(task);
    // Tasks submitted in one go (a batch from the broker) leave in one frame per block.
    if (this.dispatchQueued) return;
    this.dispatchQueued = true;
    process.nextTick(() => {
      this.dispatchQueued = false;
      this.dispatch();
    });
  }

  /** Runs `tasks` again, in order, ahead of the queue (they were submitted before the tasks waiting there). */
  requeue(...tasks: EngineTask[]): void {
    for (let i = tasks.length - 1; i >= 0; i--) this.queue.unshift(tasks[i]);
    this.dispatch();
  }

  /**
   * Takes a task out of the queue if it is still there (not sent to any
   * block); true if it was. O(queued), which is fine for the odd cancel.
   */
  remove(taskId: string): boolean {
    const tasks = this.queue.drain();
    const index = tasks.findIndex((task) => task.taskId === taskId);
    if (index >= 0) tasks.splice(index, 1);
    for (const task of tasks) this.queue.push(task);
    return index >= 0;
  }

  /** Removes and returns every queued task. */
  takeQueued(): EngineTask[] {
    return this.queue.drain();
  }

  blocks(): IterableIterator<ConnectedBlock> {
    return this.connections.values();
  }

  /** Idle workers on blocks that take tasks. */
  freeSlots(): number {
    let free = 0;
    for (const c of this.connections.values()) if (!c.draining) free += Math.max(0, c.workers - c.inFlight.size);
    return free;
  }

  /** Tells a block to shut down; it gets no more tasks. */
  drain(blockId: string): void {
    const connection = this.connections.get(blockId);
    if (!connection) return;
    connection.draining = true;
    write(connection.socket, { v: 1, cmd: "shutdown" });
  }

  /**
   * Sends a block no more tasks, but lets it finish the ones it holds (a
   * partly idle block being scaled in); `emptied` follows once it holds none
   * (at once if it holds none now). False if no such block.
   */
  hold(blockId: string): boolean {
    const connection = this.connections.get(blockId);
    if (!connection) return false;
    connection.draining = true;
    connection.held = true;
    this.whenEmpty(connection);
    return true;
  }

  /** Tells a drained or held block that holds no task any more. */
  private whenEmpty(connection: Connection): void {
    if (connection.inFlight.size > 0) return;
    if (connection.drainAsked) {
      connection.drainAsked = false;
      write(connection.socket, { v: 1, cmd: "drained" });
    }
    if (connection.held) {
      connection.held = false;
      queueMicrotask(() => this.events.emptied?.(connection));
    }
  }

  /** Closes every connection and stops listening. */
  async close(): Promise<void> {
    clearInterval(this.heartbeatTimer);
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    const unix = this.unixServer;
    if (unix) await new Promise<void>((resolve) => unix.close(() => resolve()));
  }

  private dispatch(): void {
    if (this.queue.length === 0) return;
    const batches = new Map<Connection, EngineTask[]>();
    // Idle workers on every block first; prefetch slots only after, so a task
    // waits behind another only when no block, connected or starting, has a worker free.
    for (const prefetching of this.prefetch > 0 ? [false, true] : [false]) {
      const keep = prefetching ? this.events.reserved() : 0;
      for (const c of this.connections.values()) {
        if (c.draining) continue;
        const extra = prefetching ? c.extra : 0;
        let free = c.workers + extra - c.inFlight.size;
        // Prefetch slots are refilled once half of them are free, so a steady stream travels several tasks a frame.
        if (free <= 0 || (extra > 0 && free < Math.ceil(extra / 2))) continue;
        const batch = batches.get(c) ?? [];
        batches.set(c, batch);
        while (free > 0 && this.queue.length > keep) {
          const task = this.queue.shift() as EngineTask;
          c.inFlight.set(task.taskId, task);
          batch.push(task);
          free--;
        }
        if (this.queue.length <= keep) break;
      }
      if (this.queue.length <= keep) break;
    }
    for (const [c, tasks] of batches) {
      if (tasks.length === 0) continue;
      for (const batch of intoBatches(tasks)) write(c.socket, { v: 1, cmd: "run", tasks: batch });
      this.events.dispatched(tasks, c.blockId);
    }
  }

  /** Drops the blocks that sent nothing for longer than the heartbeat threshold. */
  private dropSilentBlocks(): void {
    const now = Date.now();
    const { heartbeatThresholdMs } = this.options;
    for (const c of this.connections.values()) {
      const silent = now - c.lastHeard;
      if (silent <= heartbeatThresholdMs) continue;
      c.dropped = `its block manager sent no heartbeat for ${seconds(silent)} s (heartbeat_threshold: ${seconds(heartbeatThresholdMs)} s): its node is down or cannot reach the interchange`;
      this.log.warn(`Too many heartbeats missed by block ${c.blockId} on ${c.hostname}; removing it.`);
      c.socket.destroy();
    }
  }

  private accept(socket: Socket): void {
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    this.sockets.add(socket);
    let connection: Connection | undefined;
    const timer = setTimeout(() => {
      this.log.warn(`A connection to the interchange from ${socket.remoteAddress} did not register in time; closed.`);
      socket.destroy();
    }, REGISTRATION_TIMEOUT_MS);

    const reader = new FrameReader(MAX_REGISTRATION_CHARS, (raw) => {
      const message = decodeBlockMessage(raw);
      if (connection) connection.lastHeard = Date.now();
      if (!connection) {
        connection = this.register(socket, message);
        if (connection) {
          clearTimeout(timer);
          reader.maxChars = MAX_FRAME_CHARS;
        }
        return;
      }
      this.onMessage(connection, message);
    });

    socket.on("data", (chunk) => {
      try {
        reader.push(chunk);
      } catch (err) {
        const who = connection ? `block ${connection.blockId}` : `an unregistered peer at ${socket.remoteAddress}`;
        this.log.error(`The interchange got bad data from ${who} (${(err as Error).message}); closing the connection.`);
        socket.destroy();
      }
    });
    socket.on("error", (err) => this.log.debug(`Interchange connection error: ${err.message}`));
    socket.on("close", () => {
      clearTimeout(timer);
      this.sockets.delete(socket);
      if (!connection || this.connections.get(connection.blockId) !== connection) return;
      this.connections.delete(connection.blockId);
      const unanswered = [...connection.inFlight.values()];
      connection.inFlight.clear();
      this.events.closed(
        connection,
        unanswered.slice(0, connection.workers),
        unanswered.slice(connection.workers),
        connection.dropped,
      );
    });
  }

  private register(socket: Socket, message: BlockMessage | Registration): Connection | undefined {
    const reject = (reason: string): undefined => {
      this.log.warn(`The interchange rejected a block registration: ${reason}.`);
      write(socket, { v: 1, cmd: "rejected", reason });
      socket.end();
      return undefined;
    };
    if (message.cmd !== "register") return reject(`the first message must be a registration, not ${message.cmd}`);
    if (!timingSafeEqual(digest(message.secret), this.secretDigest)) return reject("wrong secret");
    const refusal = this.events.admit(message);
    if (refusal) return reject(refusal);
    const connection: Connection = {
      blockId: message.blockId,
      pid: message.pid,
      hostname: message.hostname,
      via: message.via,
      workers: message.workers,
      inFlight: new Map(),
      idleSince: Date.now(),
      draining: false,
      socket,
      lastHeard: Date.now(),
      extra: this.prefetch,
      windowResults: 0,
      windowStart: this.now(),
    };
    this.connections.set(message.blockId, connection);
    write(socket, { v: 1, cmd: "registered" });
    this.events.connected(connection);
    this.dispatch();
    return connection;
  }

  private onMessage(connection: Connection, message: BlockMessage | Registration): void {
    if (message.cmd === "register") return;
    if (message.cmd === "heartbeat") {
      write(connection.socket, { v: 1, cmd: "heartbeat" });
      return;
    }
    if (message.cmd === "drain") {
      connection.draining = true;
      connection.drainAsked = true;
      this.events.draining?.(connection);
      this.whenEmpty(connection);
      return;
    }
    if (message.cmd === "results") {
      const answered = message.results.filter((result) => this.answered(connection, result.taskId));
      this.measure(connection, answered.length);
      // Refill the block before reporting, so its workers are not idle while the UEP publishes.
      this.dispatch();
      for (const result of answered) this.events.result(result);
      return;
    }
    const task = connection.inFlight.get(message.taskId);
    if (!this.answered(connection, message.taskId) || !task) return;
    this.dispatch();
    this.events.lost(task, message.reason);
  }

  /** Counts a block's answers and, once a window is over, sizes its prefetch by its rate in that window. */
  private measure(connection: Connection, answered: number): void {
    connection.windowResults += answered;
    const now = this.now();
    const elapsed = now - connection.windowStart;
    if (elapsed < RATE_WINDOW_MS) return;
    connection.extra = prefetchDepth(this.prefetch, connection.workers, (connection.windowResults * 1000) / elapsed);
    connection.windowResults = 0;
    connection.windowStart = now;
  }

  /** Takes an answered task off its block; false (with a warning) if the block was not holding it. */
  private answered(connection: Connection, taskId: string): boolean {
    if (!connection.inFlight.delete(taskId)) {
      this.log.warn(`Block ${connection.blockId} answered task ${taskId}, which it was not running.`);
      return false;
    }
    if (connection.inFlight.size === 0) {
      connection.idleSince = Date.now();
      if (connection.draining) this.whenEmpty(connection);
    }
    return true;
  }
}

function write(socket: Socket, message: InterchangeMessage): void {
  if (!socket.destroyed) socket.write(encodeFrame(message));
}

function seconds(ms: number): string {
  return String(Math.round(ms / 100) / 10);
}

/** The ports of an inclusive range in random order, so that two engines rarely race for the same one. */
function shuffledRange([low, high]: readonly [number, number]): number[] {
  const ports = Array.from({ length: high - low + 1 }, (_, i) => low + i);
  for (let i = ports.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [ports[i], ports[j]] = [ports[j], ports[i]];
  }
  return ports;
}

/** Equal-length digests, so the comparison takes the same time whatever the secret's length. */
function digest(secret: string): Buffer {
  return createHash("sha256").update(secret).digest();
}
