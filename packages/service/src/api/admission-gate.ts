/**
 * Bounds how many requests of one route are handled at once. A submit is
 * parsed, checked, stored and published by the one thread that also answers
 * /healthz; without a bound, every Executor's first requests (50 Executors × 4
 * in flight × 128 tasks in `npm run load`) are read, parsed and validated in
 * the same few turns of the event loop, and /healthz waits behind all of them.
 *
 * Requests beyond the bound wait in `onRequest`, after authentication and
 * before their body is read (it stays in the socket, so the client is held
 * back by TCP), and go in the order they came. A freed place is handed on in a
 * macrotask of its own, so a waiting request never starts inside the turn
 * that finished another: timers, the broker and /healthz get their turn in
 * between.
 */
import type { FastifyReply, FastifyRequest } from "fastify";

export class AdmissionGate {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  /** @param limit requests handled at once; the others wait, first come first served. */
  constructor(private readonly limit: number) {
    if (!Number.isSafeInteger(limit) || limit < 1)
      throw new RangeError(`limit must be a whole number ≥ 1; got ${limit}.`);
  }

  /** Requests being handled now. */
  get active(): number {
    return this.running;
  }

  /** Requests waiting for a place. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Resolves once a place is free; the caller then owes one {@link leave}. */
  enter(): Promise<void> {
    if (this.running < this.limit && this.waiting.length === 0) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Frees a place: the longest waiting request gets it, in a later macrotask. */
  leave(): void {
    const next = this.waiting.shift();
    if (next) setImmediate(next);
    else this.running--;
  }

  /**
   * A route's `onRequest` hook: waits for a place, and frees it once the
   * response is done or its connection closed (whichever comes first).
   */
  readonly onRequest = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    await this.enter();
    let left = false;
    const leave = () => {
      if (left) return;
      left = true;
      this.leave();
    };
    reply.raw.once("close", leave);
    // A connection that died while the request waited: its response will never close.
    if (request.raw.destroyed || reply.raw.writableFinished) leave();
  };
}
