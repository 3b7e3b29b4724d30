/**
 * `metrics_port` in config.yaml: the MEP serves Prometheus metrics on
 * http://127.0.0.1:<port>/metrics (loopback only; anything else is a 404).
 * UEPs are counted by the MEP; workers, blocks and tasks come from the
 * `status.json` each running UEP writes (see status-file.ts), read when scraped.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Gauge, Registry } from "prom-client";
import { readUepStatus, type UepStatus } from "../user-endpoint/status-file.js";

export interface MepMetricsSources {
  /** Directories of the UEPs running now. */
  runningUepDirs(): string[];
}

export interface MepMetricsServer {
  /** The port it listens on (the configured one). */
  port: number;
  close(): Promise<void>;
}

type Counted = keyof Omit<UepStatus, "at">;

const GAUGES: Array<{ name: string; help: string; field: Counted }> = [
  { name: "conduit_mep_workers", help: "Workers of this endpoint's running UEPs.", field: "workers" },
  { name: "conduit_mep_idle_workers", help: "Of those, the ones without a task.", field: "idleWorkers" },
  { name: "conduit_mep_blocks", help: "Blocks (provider jobs) of this endpoint's running UEPs.", field: "blocks" },
  { name: "conduit_mep_tasks_running", help: "Tasks on a worker now.", field: "tasksRunning" },
  { name: "conduit_mep_tasks_pending", help: "Tasks handed to an engine, not on a worker yet.", field: "tasksPending" },
];

export function mepMetricsRegistry(sources: MepMetricsSources): Registry {
  const registry = new Registry();
  let statuses: UepStatus[] = [];
  new Gauge({
    name: "conduit_mep_ueps",
    help: "User endpoint processes this MEP runs now.",
    registers: [registry],
    collect() {
      // First gauge collected: reads the status files once for the whole scrape.
      const dirs = sources.runningUepDirs();
      statuses = dirs.map(readUepStatus).filter((s): s is UepStatus => s !== undefined);
      this.set(dirs.length);
    },
  });
  for (const { name, help, field } of GAUGES) {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(statuses.reduce((sum, s) => sum + s[field], 0));
      },
    });
  }
  return registry;
}

/** Listens on 127.0.0.1:`port`; rejects with a sentence when the port is taken. */
export async function startMepMetricsServer(port: number, sources: MepMetricsSources): Promise<MepMetricsServer> {
  const registry = mepMetricsRegistry(sources);
  const server: Server = createServer((req, res) => {
    if (req.method !== "GET" || req.url?.split("?")[0] !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("Not found: the MEP serves only GET /metrics.\n");
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
      (err: Error) => res.writeHead(500, { "content-type": "text/plain" }).end(`${err.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(
        new Error(
          err.code === "EADDRINUSE"
            ? `metrics_port ${port} is in use on 127.0.0.1; choose another port in config.yaml or stop what listens there.`
            : `Could not serve metrics on 127.0.0.1:${port}: ${err.message}`,
        ),
      ),
    );
    server.listen(port, "127.0.0.1", () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
