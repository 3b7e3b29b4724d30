/**
 * The service's Prometheus metrics (`GET /metrics`, admins only). Counters and
 * histograms are kept by this replica as things happen; the gauges (open tasks,
 * UEPs, queue depths) are read from the store and the broker when scraped, at
 * most once per {@link SNAPSHOT_TTL_MS}, so a scrape costs the hot path nothing.
 */
import { RESULTS_QUEUE } from "@conduit/protocol";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { ManagementApi } from "./broker/management-api.js";
import type { Store } from "./store/store.js";

/** How long one read of the store and the broker serves scrapes (concurrent scrapes share one). */
const SNAPSHOT_TTL_MS = 1_000;
/** Submit times remembered for the round-trip histogram; beyond this the oldest are forgotten. */
const MAX_TRACKED_TASKS = 200_000;

/** Round trips from a millisecond to ten minutes. */
const ROUND_TRIP_BUCKETS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 300, 600];
const HTTP_BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** A UEP task queue's name: `uep.<endpoint id>.<uep id>.tasks`. */
const UEP_TASK_QUEUE = /^uep\.([0-9a-f-]{36})\.[0-9a-f-]{36}\.tasks$/;

export interface MetricsSources {
  store: Store;
  /** The management API the service administers accounts through, for queue depths (absent with a shared account). */
  management?: ManagementApi;
  vhost: string;
}

interface QueueRow {
  name?: unknown;
  messages_ready?: unknown;
  messages_unacknowledged?: unknown;
}

export class ServiceMetrics {
  readonly registry = new Registry();
  private readonly submitTimes = new Map<string, number>();
  private snapshotAt = 0;
  private snapshotting: Promise<void> | undefined;

  private readonly submitted = new Counter({
    name: "conduit_tasks_submitted_total",
    help: "Tasks accepted by this replica's submit route.",
    labelNames: ["endpoint"],
    registers: [this.registry],
  });
  private readonly completed = new Counter({
    name: "conduit_task_results_total",
    help: "Task results stored by this replica, by final state.",
    labelNames: ["endpoint", "state"],
    registers: [this.registry],
  });
  private readonly roundTrip = new Histogram({
    name: "conduit_task_round_trip_seconds",
    help: "Submit accepted to result stored, for tasks submitted through this replica.",
    labelNames: ["endpoint"],
    buckets: ROUND_TRIP_BUCKETS,
    registers: [this.registry],
  });
  private readonly http = new Histogram({
    name: "conduit_http_request_duration_seconds",
    help: "REST request latency, by route and status code.",
    labelNames: ["method", "route", "status"],
    buckets: HTTP_BUCKETS,
    registers: [this.registry],
  });
  private readonly openTasks = new Gauge({
    name: "conduit_tasks_open",
    help: "Tasks not yet finished, by endpoint and state (read from the store).",
    labelNames: ["endpoint", "state"],
    registers: [this.registry],
  });
  private readonly ueps = new Gauge({
    name: "conduit_user_endpoints",
    help: "User endpoints known to the store, and those heard from within the last minute.",
    labelNames: ["endpoint", "seen"],
    registers: [this.registry],
  });
  private readonly queueDepth = new Gauge({
    name: "conduit_queue_messages",
    help: "Messages in the broker's queues: tasks waiting per endpoint, and results waiting for the service.",
    labelNames: ["queue", "endpoint", "kind"],
    registers: [this.registry],
  });

  constructor(private readonly sources: MetricsSources) {}

  /** Tasks about to be published: their round trip starts now (a result may be stored before the submit answers). */
  tasksPublishing(taskIds: readonly string[]): void {
    const now = performance.now();
    for (const id of taskIds) this.submitTimes.set(id, now);
    // Maps iterate in insertion order: the first keys are the oldest.
    if (this.submitTimes.size > MAX_TRACKED_TASKS) {
      let excess = this.submitTimes.size - MAX_TRACKED_TASKS;
      for (const id of this.submitTimes.keys()) {
        if (excess-- <= 0) break;
        this.submitTimes.delete(id);
      }
    }
  }

  /** Tasks a submit published. */
  tasksSubmitted(endpointId: string, count: number): void {
    if (count > 0) this.submitted.inc({ endpoint: endpointId }, count);
  }

  /** A result this replica stored. */
  resultStored(endpointId: string, taskId: string, state: string): void {
    this.completed.inc({ endpoint: endpointId, state });
    const at = this.submitTimes.get(taskId);
    if (at !== undefined) {
      this.submitTimes.delete(taskId);
      this.roundTrip.observe({ endpoint: endpointId }, (performance.now() - at) / 1000);
    }
  }

  httpRequest(method: string, route: string, status: number, seconds: number): void {
    this.http.observe({ method, route, status: String(status) }, seconds);
  }

  /** The Prometheus text exposition of every metric, the gauges fresh within {@link SNAPSHOT_TTL_MS}. */
  async render(): Promise<string> {
    if (Date.now() - this.snapshotAt > SNAPSHOT_TTL_MS) {
      this.snapshotting ??= this.snapshot().finally(() => {
        this.snapshotting = undefined;
      });
      await this.snapshotting;
    }
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private async snapshot(): Promise<void> {
    const [open, ueps, queues] = await Promise.all([
      this.sources.store.countOpenTasks(),
      this.sources.store.countUeps(60),
      this.queues(),
    ]);
    this.openTasks.reset();
    for (const row of open) this.openTasks.set({ endpoint: row.endpointId, state: row.state }, row.count);
    this.ueps.reset();
    for (const row of ueps) {
      this.ueps.set({ endpoint: row.endpointId, seen: "any" }, row.total);
      this.ueps.set({ endpoint: row.endpointId, seen: "last_minute" }, row.recent);
    }
    this.queueDepth.reset();
    for (const q of queues) {
      const endpoint = UEP_TASK_QUEUE.exec(q.name)?.[1];
      const queue = endpoint ? "uep_tasks" : q.name;
      this.queueDepth.inc({ queue, endpoint: endpoint ?? "", kind: "ready" }, q.ready);
      this.queueDepth.inc({ queue, endpoint: endpoint ?? "", kind: "unacked" }, q.unacked);
    }
    this.snapshotAt = Date.now();
  }

  /** UEP task queues and the service's results queue, from the management API (none without one). */
  private async queues(): Promise<Array<{ name: string; ready: number; unacked: number }>> {
    const { management, vhost } = this.sources;
    if (!management) return [];
    const rows = await management.request(
      "GET",
      `/api/queues/${encodeURIComponent(vhost)}?columns=name,messages_ready,messages_unacknowledged`,
    );
    if (!Array.isArray(rows)) return [];
    return (rows as QueueRow[])
      .filter((r): r is QueueRow & { name: string } => typeof r.name === "string")
      .filter((r) => UEP_TASK_QUEUE.test(r.name) || r.name === RESULTS_QUEUE)
      .map((r) => ({
        name: r.name,
        ready: Number(r.messages_ready) || 0,
        unacked: Number(r.messages_unacknowledged) || 0,
      }));
  }
}
