/**
 * The console's live charts: one server-sent event stream per open endpoint
 * page, a point per interval read from the store (what finished in the last
 * {@link WINDOW_S} seconds, what waits and runs now), scoped to the viewer's
 * own tasks. Streams are ended when the service closes, so a browser left open
 * does not hold the shutdown.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Store } from "../store/store.js";

/** The window throughput and latency percentiles are computed over, in seconds. */
export const WINDOW_S = 10;

/** One point, as console.js reads it. */
export interface LivePoint {
  /** Milliseconds since the epoch. */
  t: number;
  /** Tasks finished per second over the window. */
  throughput: number;
  /** Submit-to-result seconds over the window; null when nothing finished. */
  p50: number | null;
  p95: number | null;
  p99: number | null;
  queued: number;
  running: number;
}

export class LiveStreams {
  private readonly streams = new Set<() => void>();

  constructor(
    private readonly store: Store,
    private readonly intervalMs: number,
  ) {}

  /** Answers `request` with a stream of points for `ownerId`'s tasks on `endpointId`. */
  open(request: FastifyRequest, reply: FastifyReply, ownerId: string, endpointId: string): void {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      ...(reply.getHeaders() as Record<string, string>),
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
    });
    let busy = false;
    const tick = async () => {
      // A slow query skips a point rather than piling queries up.
      if (busy) return;
      busy = true;
      try {
        const f = await this.store.liveFigures(ownerId, endpointId, WINDOW_S);
        const point: LivePoint = {
          t: Date.now(),
          throughput: f.finished / WINDOW_S,
          p50: f.p50,
          p95: f.p95,
          p99: f.p99,
          queued: f.queued,
          running: f.running,
        };
        if (!res.writableEnded) res.write(`data: ${JSON.stringify(point)}\n\n`);
      } catch (err) {
        request.log.warn({ err }, "Could not read the figures of a live chart.");
      } finally {
        busy = false;
      }
    };
    const timer = setInterval(tick, this.intervalMs);
    const stop = () => {
      clearInterval(timer);
      this.streams.delete(stop);
      if (!res.writableEnded) res.end();
    };
    this.streams.add(stop);
    res.on("close", stop);
    void tick();
  }

  closeAll(): void {
    for (const stop of [...this.streams]) stop();
  }
}
