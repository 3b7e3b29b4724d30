/**
 * The interchange of a HighThroughputEngine: a TCP server on loopback inside
 * the UEP that block managers connect back to. It keeps the FIFO queue of
 * tasks and sends a task only to a block with an idle worker, so a block busy
 * with long tasks never holds up short ones that another block could run.
 *
 * A connection counts only once its first frame registered it with the
 * engine's secret and a block id the engine is waiting for.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import { Fifo } from "../worker/fifo.js";
import { encodeFrame, FrameReader } from "../worker/frames.js";
import {
  type BlockMessage,
  decodeBlockMessage,
  type InterchangeMessage,
  MAX_FRAME_CHARS,
  MAX_REGISTRATION_CHARS,
} from "../worker/interchange-protocol.js";
import type { EngineResult, EngineTask, Logger } from "./engine-types.js";

/** A connection that has not registered within this time is closed. */
const REGISTRATION_TIMEOUT_MS = 10_000;

/** A registered block manager. */
export interface ConnectedBlock {
  readonly blockId: string;
  readonly pid: number;
  readonly hostname: string;
  readonly workers: number;
  /** Tasks sent to it and not yet answered. */
  readonly inFlight: Map<string, EngineTask>;
  /** When it last had no task (ms since the epoch). */
  idleSince: number;
  /** Told to shut down: gets no more tasks. */
  draining: boolean;
}

export interface InterchangeEvents {
  /** Why a block with this id may not register, or undefined to accept it. */
  admit(blockId: string): string | undefined;
  connected(block: ConnectedBlock): void;
  result(result: EngineResult): void;
  /** A worker of a block died while running `task`. */
  lost(task: EngineTask, reason: string): void;
  /** A registered block's connection closed; `inFlight` are the tasks it had not answered. */
  closed(block: ConnectedBlock, inFlight: EngineTask[]): void;
}

interface Connection extends ConnectedBlock {
  socket: Socket;
}

export class Interchange {
  private readonly server: Server;
  private readonly queue = new Fifo<EngineTask>();
  private readonly connections = new Map<string, Connection>();
  private readonly sockets = new Set<Socket>();
  private readonly secretDigest: Buffer;

  constructor(
    secret: string,
    private readonly events: InterchangeEvents,
    private readonly log: Logger,
  ) {
    this.secretDigest = digest(secret);
    this.server = createServer({ noDelay: true }, (socket) => this.accept(socket));
  }

  /** Listens on a random loopback port; returns it. */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(0, "127.0.0.1", () => {
        this.server.off("error", reject);
        resolve((this.server.address() as { port: number }).port);
      });
    });
  }

  get queued(): number {
    return this.queue.length;
  }

  submit(task: EngineTask): void {
    this.queue.push(task);
    this.dispatch();
  }

  /** Runs `task` again, ahead of the queue (it was submitted before the tasks waiting there). */
  requeue(task: EngineTask): void {
    this.queue.unshift(task);
    this.dispatch();
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

  /** Closes every connection and stops listening. */
  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private dispatch(): void {
    if (this.queue.length === 0) return;
    for (const c of this.connections.values()) {
      if (c.draining) continue;
      let free = c.workers - c.inFlight.size;
      if (free <= 0) continue;
      // One write burst per block: with noDelay on, corking keeps a batch of tasks in few packets.
      c.socket.cork();
      while (free > 0 && this.queue.length > 0) {
        const task = this.queue.shift() as EngineTask;
        c.inFlight.set(task.taskId, task);
        write(c.socket, { v: 1, cmd: "run", task });
        free--;
      }
      process.nextTick(() => c.socket.uncork());
      if (this.queue.length === 0) return;
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
      const inFlight = [...connection.inFlight.values()];
      connection.inFlight.clear();
      this.events.closed(connection, inFlight);
    });
  }

  private register(socket: Socket, message: BlockMessage): Connection | undefined {
    const reject = (reason: string): undefined => {
      this.log.warn(`The interchange rejected a block registration: ${reason}.`);
      write(socket, { v: 1, cmd: "rejected", reason });
      socket.end();
      return undefined;
    };
    if (message.cmd !== "register") return reject(`the first message must be a registration, not ${message.cmd}`);
    if (!timingSafeEqual(digest(message.secret), this.secretDigest)) return reject("wrong secret");
    const refusal = this.events.admit(message.blockId);
    if (refusal) return reject(refusal);
    const connection: Connection = {
      blockId: message.blockId,
      pid: message.pid,
      hostname: message.hostname,
      workers: message.workers,
      inFlight: new Map(),
      idleSince: Date.now(),
      draining: false,
      socket,
    };
    this.connections.set(message.blockId, connection);
    write(socket, { v: 1, cmd: "registered" });
    this.events.connected(connection);
    this.dispatch();
    return connection;
  }

  private onMessage(connection: Connection, message: BlockMessage): void {
    if (message.cmd === "register") return;
    const taskId = message.cmd === "result" ? message.result.taskId : message.taskId;
    const task = connection.inFlight.get(taskId);
    if (!task) {
      this.log.warn(`Block ${connection.blockId} answered task ${taskId}, which it was not running.`);
      return;
    }
    connection.inFlight.delete(taskId);
    if (connection.inFlight.size === 0) connection.idleSince = Date.now();
    // Refill the block before reporting, so its worker is not idle while the UEP publishes.
    this.dispatch();
    if (message.cmd === "result") this.events.result(message.result);
    else this.events.lost(task, message.reason);
  }
}

function write(socket: Socket, message: InterchangeMessage): void {
  if (!socket.destroyed) socket.write(encodeFrame(message));
}

/** Equal-length digests, so the comparison takes the same time whatever the secret's length. */
function digest(secret: string): Buffer {
  return createHash("sha256").update(secret).digest();
}
