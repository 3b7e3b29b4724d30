/**
 * The chaos suite's machinery: a whole Conduit through the real CLIs
 * (service, MEP, UEP, HighThroughputEngine with 4 workers) whose endpoint
 * reaches RabbitMQ through a proxy the suite controls, and `runFault`, which
 * submits N tasks of 100 ms, strikes a fault after the first results and
 * checks that every task ends exactly once, in the service and in the
 * Executor's result stream, and that every failure says why.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client, Executor, type ResultEvent } from "@conduit/sdk";
import { startTcpProxy, type TcpProxy } from "../../packages/sdk/test/tcp-proxy.js";
import {
  createVhost,
  ensureRabbitMQ,
  freePort,
  runEndpointCli,
  startEndpoint,
  startService,
} from "../../scripts/local-stack.mjs";
import { pidsMatching, readToken, tempDir } from "../e2e/helpers.js";

export const ENDPOINT_NAME = "chaos";

/** HighThroughputEngine, 4 workers in one block; a task whose worker dies runs once more (`retries`). */
const TEMPLATE = `engine:
  type: HighThroughputEngine
  max_workers_per_node: 4
  max_retries_on_system_failure: {{ retries|default(1) }}
  provider:
    type: LocalProvider
    min_blocks: 1
    max_blocks: 1
    init_blocks: 1
    worker_init: {{ worker_init|default() }}
idle_heartbeats_soft: 1000
idle_heartbeats_hard: 5760
debug: {{ debug|default(false) }}
`;

export interface ChaosStackOptions {
  /**
   * RabbitMQ behind the proxy (default 127.0.0.1:5672, the vhost made here), or a node of its own
   * (its management API on `managementPort`, if on).
   */
  broker?: { port: number; vhost?: string; managementPort?: number };
  /** AMQP heartbeat (seconds) in the URL endpoints and SDKs get. */
  heartbeat?: number;
  /** Extra `conduit-service start` arguments (e.g. --database-url). */
  serviceArgs?: string[];
  /**
   * `conduit-service` replicas, started together on one store (Postgres: pass --database-url in
   * `serviceArgs`) and one broker, each on a port of its own. @default 1
   */
  replicas?: number;
  /** More lines for the endpoint's config.yaml (e.g. `metrics_port: 9100`). */
  endpointConfig?: string;
}

type RunningService = Awaited<ReturnType<typeof startService>>;

export interface ChaosStack {
  userDir: string;
  /** The service's broker URL (direct, not through the proxy). */
  amqpUrl: string;
  env: NodeJS.ProcessEnv;
  endpointId: string;
  client: Client;
  proxy: TcpProxy;
  endpoint: Awaited<ReturnType<typeof startEndpoint>>;
  /** The first replica: the endpoint and `client` talk to it. */
  service: RunningService;
  /** Every replica, the first one first. */
  replicas: RunningService[];
  /** A client of the last replica: the run reads the tasks' final states through it. */
  statusClient: Client;
  /** Starts replica `index` again on its port (after it was killed), as systemd's Restart=always would. */
  restartReplica(index: number): Promise<void>;
  /** Starts the endpoint again (after its MEP was killed), as systemd's Restart=always would. */
  restartEndpoint(): Promise<void>;
  /** Pids of the endpoint's UEPs. */
  uepPids(): number[];
  dispose(): Promise<void>;
}

export async function startChaosStack(options: ChaosStackOptions = {}): Promise<ChaosStack> {
  const userDir = tempDir("chaos");
  const cleanups: Array<() => Promise<void> | void> = [() => rmSync(userDir, { recursive: true, force: true })];
  const dispose = async () => {
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => {});
  };
  try {
    let amqpUrl: string;
    let brokerPort: number;
    const managementArgs: string[] = [];
    if (options.broker) {
      brokerPort = options.broker.port;
      amqpUrl = `amqp://guest:guest@127.0.0.1:${brokerPort}/${encodeURIComponent(options.broker.vhost ?? "/")}`;
      // The service finds the management API on 15672 by default: that is the shared node's, not this one's.
      if (options.broker.managementPort !== undefined) {
        managementArgs.push("--amqp-management-url", `http://guest:guest@127.0.0.1:${options.broker.managementPort}`);
      }
    } else {
      await ensureRabbitMQ();
      const vhost = await createVhost();
      cleanups.push(() => vhost.dispose());
      amqpUrl = vhost.url;
      brokerPort = Number(new URL(amqpUrl).port || 5672);
    }
    const proxy = await startTcpProxy({ host: "127.0.0.1", port: brokerPort });
    cleanups.push(() => proxy.close());
    const publicUrl = new URL(amqpUrl);
    if (options.heartbeat !== undefined) publicUrl.searchParams.set("heartbeat", String(options.heartbeat));
    const env: NodeJS.ProcessEnv = { ...process.env, CONDUIT_USER_DIR: userDir };
    delete env.CONDUIT_SERVICE_URL;
    delete env.CONDUIT_TOKEN;
    const replicaCount = options.replicas ?? 1;
    if (replicaCount > 1 && !(options.serviceArgs ?? []).includes("--database-url")) {
      throw new Error("Several service replicas need one Postgres store; pass --database-url in serviceArgs.");
    }
    const serviceArgs = [
      "--amqp-url",
      amqpUrl,
      "--amqp-public-url",
      publicUrl.toString(),
      ...managementArgs,
      ...(options.serviceArgs ?? []),
    ];
    const ports = await Promise.all(Array.from({ length: replicaCount }, () => freePort()));
    // Started at once, as replicas behind a load balancer are: they migrate one store together.
    const started = await Promise.allSettled(ports.map((port) => startService({ env, port, args: serviceArgs })));
    const replicas: RunningService[] = [];
    for (const s of started) if (s.status === "fulfilled") replicas.push(s.value);
    cleanups.push(async () => {
      await Promise.all(replicas.map((r) => r.stop()));
    });
    const failed = started.find((s): s is PromiseRejectedResult => s.status === "rejected");
    if (failed) throw failed.reason;
    const [service] = replicas;
    const configured = await runEndpointCli(["configure", ENDPOINT_NAME], env);
    if (configured.code !== 0) throw new Error(`conduit-endpoint configure failed: ${configured.stderr.trim()}`);
    const dir = join(userDir, ENDPOINT_NAME);
    // Only the endpoint goes through the proxy; the service and the SDK reach the broker directly.
    writeFileSync(
      join(dir, "config.yaml"),
      `amqp_port: ${proxy.port}\ndisplay_name: null\n${options.endpointConfig ?? ""}`,
    );
    writeFileSync(join(dir, "user_config_template.yaml.j2"), TEMPLATE);
    const stack: ChaosStack = {
      userDir,
      amqpUrl,
      env,
      endpointId: "",
      client: new Client({ serviceUrl: service.url, token: readToken(userDir) }),
      statusClient: new Client({ serviceUrl: replicas[replicas.length - 1].url, token: readToken(userDir) }),
      proxy,
      service,
      replicas,
      async restartReplica(index) {
        replicas[index] = await startService({ env, port: ports[index], args: serviceArgs });
      },
      endpoint: await startEndpoint({ env, name: ENDPOINT_NAME }),
      async restartEndpoint() {
        stack.endpoint = await startEndpoint({ env, name: ENDPOINT_NAME });
      },
      uepPids: () => pidsMatching(`conduit UEP uep.${stack.endpointId}.`),
      dispose,
    };
    stack.endpointId = stack.endpoint.endpointId;
    cleanups.push(() => stack.endpoint.stop());
    return stack;
  } catch (err) {
    await dispose();
    throw err;
  }
}

/** What one task returns: which task, the how-many-th start of it, the worker's pid. */
export interface ChaosValue {
  i: number;
  attempt: number;
  pid: number;
  /** When this run of the task started (ms since the epoch; same machine). */
  startedAt: number;
}

/**
 * The task: counts its starts in a marker file (a re-run appends again), then
 * sleeps `ms`. Shipped as source text, so it uses only its parameters.
 */
const chaosTask = async (i: number, dir: string, ms: number) => {
  const startedAt = Date.now();
  const fs = await import("node:fs");
  const path = `${dir}/${i}`;
  fs.appendFileSync(path, `${process.pid}\n`);
  const attempt = fs.readFileSync(path, "utf8").trim().split("\n").length;
  await new Promise((resolve) => setTimeout(resolve, ms));
  return { i, attempt, pid: process.pid, startedAt };
};

/** Per task index, the pids of the workers that started it, in order. */
export function readMarkers(dir: string): Record<string, number[]> {
  const starts: Record<string, number[]> = {};
  for (const name of readdirSync(dir)) {
    starts[name] = readFileSync(join(dir, name), "utf8").trim().split("\n").map(Number);
  }
  return starts;
}

export interface FaultContext {
  /** The run's marker directory: one file per task index, a worker pid per start (see readMarkers). */
  markers: string;
  stack: ChaosStack;
  /** Values of the results so far (the latest last). */
  values: ChaosValue[];
}

export interface Fault {
  name: string;
  /** Template variables for this run's UEP (e.g. `retries`). */
  userEndpointConfig?: Record<string, unknown>;
  /** Strikes; resolves when the fault is over (the thing killed is back, or the link restored). */
  strike(ctx: FaultContext): Promise<void>;
  /** After the run: why the fault did not take effect, or undefined when it did. */
  missed?(ctx: FaultContext): string | undefined;
}

export interface FaultReport {
  fault: string;
  submitted: number;
  succeeded: number;
  /** Failed, each with a cause. */
  failed: number;
  /** Failures without a cause (must be 0). */
  failedWithoutCause: number;
  /** Extra starts of tasks (marker files). */
  rerun: number;
  /** Tasks with no final state in the service or no result in the Executor (must be 0). */
  lost: number;
  /** Tasks the Executor reported more than once (must be 0). */
  twice: number;
  /** Tasks whose service state disagrees with what the Executor reported (must be 0). */
  mismatched: number;
  /** Milliseconds from the fault to the next result. */
  faultToNextResultMs: number | null;
  /** Milliseconds from the fault to the first result of a task that started after it (the system working again). */
  faultToNewWorkMs: number | null;
  /** Distinct failure causes with their counts. */
  causes: Record<string, number>;
  /** Why the fault did not take effect (a run that proves nothing), if it did not. */
  missed?: string;
}

function causeOf(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`.trim();
  return typeof error === "string" ? error : "";
}

/** The "why" of a failure, with ids and pids blurred so that equal causes group together. */
function causeKind(cause: string): string {
  return cause
    .replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, "<id>")
    .replace(/\d+/g, "N")
    .slice(0, 200);
}

export interface RunOptions {
  tasks: number;
  /** Results before the fault strikes. */
  faultAfter: number;
  taskMs?: number;
  /** Longest wait for all results after the last submit. */
  timeoutMs?: number;
  log?: (line: string) => void;
}

/** Submits `tasks` tasks, strikes `fault` after `faultAfter` results, waits for every outcome, and checks them. */
export async function runFault(stack: ChaosStack, fault: Fault, options: RunOptions): Promise<FaultReport> {
  const { tasks, faultAfter, taskMs = 100, timeoutMs = 240_000, log = () => {} } = options;
  const markers = join(stack.userDir, `markers-${fault.name}`);
  mkdirSync(markers, { recursive: true });
  const ex = new Executor({
    endpointId: stack.endpointId,
    userEndpointConfig: { worker_init: "", chaos: fault.name, ...fault.userEndpointConfig },
    client: stack.client,
  });
  const events = new Map<string, ResultEvent[]>();
  const values: ChaosValue[] = [];
  let faultAt: number | undefined;
  let nextResultAt: number | undefined;
  let newWorkAt: number | undefined;
  let struck: Promise<void> | undefined;
  let strikeError: unknown;
  ex.on("result", (event) => {
    const list = events.get(event.taskId) ?? [];
    list.push(event);
    events.set(event.taskId, list);
    if (event.ok) values.push(event.value as ChaosValue);
    if (faultAt !== undefined && nextResultAt === undefined) nextResultAt = Date.now();
    if (faultAt !== undefined && newWorkAt === undefined && event.ok && (event.value as ChaosValue).startedAt > faultAt)
      newWorkAt = Date.now();
    if (struck === undefined && events.size >= faultAfter) {
      log(`${fault.name}: striking after ${events.size} results`);
      faultAt = Date.now();
      struck = fault.strike({ stack, values: [...values], markers }).catch((err: unknown) => {
        strikeError = err;
      });
    }
  });
  try {
    const futures = Array.from({ length: tasks }, (_, i) => ex.submit(chaosTask, i, markers, taskMs));
    const settled = await withDeadline(
      Promise.allSettled(futures),
      timeoutMs,
      () => `${tasks - events.size} of ${tasks} tasks had no outcome ${timeoutMs / 1000} s after the submit`,
    ).catch((err: Error) => {
      log(`${fault.name}: ${err.message}`);
      return undefined;
    });
    await struck;
    if (strikeError !== undefined) throw strikeError;
    const ids = futures.map((f) => f.taskId);
    const status = await batchStatus(stack.statusClient, ids);
    const report: FaultReport = {
      fault: fault.name,
      submitted: tasks,
      succeeded: 0,
      failed: 0,
      failedWithoutCause: 0,
      rerun: 0,
      lost: 0,
      twice: 0,
      mismatched: 0,
      faultToNextResultMs: faultAt !== undefined && nextResultAt !== undefined ? nextResultAt - faultAt : null,
      faultToNewWorkMs: faultAt !== undefined && newWorkAt !== undefined ? newWorkAt - faultAt : null,
      causes: {},
    };
    ids.forEach((id, index) => {
      const seen = events.get(id) ?? [];
      const state = status.get(id);
      const outcome = settled?.[index];
      const final = state === "success" || state === "failed" || state === "cancelled";
      if (seen.length === 0 || !final || outcome === undefined) {
        report.lost++;
        return;
      }
      if (seen.length > 1) report.twice++;
      const [event] = seen;
      if (event.ok !== (outcome.status === "fulfilled") || event.ok !== (state === "success")) report.mismatched++;
      if (event.ok) {
        report.succeeded++;
      } else {
        const cause = causeOf(event.error);
        if (cause.length === 0) report.failedWithoutCause++;
        else report.failed++;
        const kind = causeKind(cause);
        report.causes[kind] = (report.causes[kind] ?? 0) + 1;
      }
    });
    for (const starts of Object.values(readMarkers(markers))) report.rerun += starts.length - 1;
    if (struck === undefined) report.missed = `the fault never struck (${events.size} results)`;
    else report.missed = fault.missed?.({ stack, values, markers });
    return report;
  } finally {
    await ex.shutdown({ wait: false, cancelFutures: true }).catch(() => {});
  }
}

async function batchStatus(client: Client, ids: string[]): Promise<Map<string, string>> {
  const states = new Map<string, string>();
  for (let i = 0; i < ids.length; i += 500) {
    const reply = await client.getBatchStatus(ids.slice(i, i + 500));
    for (const [id, task] of Object.entries(reply.tasks)) states.set(id, task.state);
  }
  return states;
}

function withDeadline<T>(promise: Promise<T>, ms: number, message: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message())), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * kill -9 the worker that ran the latest task (the block manager forks a new
 * one). With `retries: 0` the task it was running fails, naming the lost worker.
 */
export function workerKill(options: { retries?: number } = {}): Fault {
  let killed: number | undefined;
  let before = new Set<number>();
  return {
    name: options.retries === undefined ? "worker kill -9" : `worker kill -9 (${options.retries} retries)`,
    userEndpointConfig: options.retries === undefined ? {} : { retries: options.retries },
    async strike({ values, markers }) {
      before = new Set(values.map((v) => v.pid));
      // A worker running a task now: started (marker written) and no result yet.
      const done = new Set(values.map((v) => String(v.i)));
      // The latest started (tasks start roughly in submit order) is the likeliest to be running still.
      const running = Object.entries(readMarkers(markers))
        .filter(([i]) => !done.has(i))
        .sort(([a], [b]) => Number(a) - Number(b));
      killed = running.length > 0 ? running[running.length - 1][1].at(-1) : values[values.length - 1]?.pid;
      if (killed === undefined) throw new Error("no result or marker named a worker pid to kill");
      process.kill(killed, "SIGKILL");
    },
    missed: ({ values }) =>
      killed !== undefined && !alive(killed) && values.some((v) => !before.has(v.pid))
        ? undefined
        : "no result came from a worker started after the kill",
  };
}

/** kill -9 the UEP (the MEP starts a new one for the waiting tasks). */
export function uepKill(): Fault {
  let killed: number[] = [];
  return {
    name: "UEP kill -9",
    async strike({ stack }) {
      killed = stack.uepPids();
      if (killed.length === 0) throw new Error("no UEP process to kill");
      for (const pid of killed) process.kill(pid, "SIGKILL");
    },
    missed: ({ stack }) =>
      stack.uepPids().some((pid) => !killed.includes(pid)) ? undefined : "no new UEP took over after the kill",
  };
}

/** kill -9 the MEP; its UEPs exit; the suite starts the endpoint again. */
export function mepKill(): Fault {
  let killed: number | undefined;
  return {
    name: "MEP kill -9",
    async strike({ stack }) {
      const ueps = stack.uepPids();
      killed = stack.endpoint.child.pid;
      stack.endpoint.child.kill("SIGKILL");
      for (let i = 0; i < 300 && ueps.some(alive); i++) await sleep(100);
      await stack.restartEndpoint();
    },
    missed: ({ stack }) =>
      killed !== undefined && stack.endpoint.child.pid !== killed && !alive(killed)
        ? undefined
        : "the MEP was not replaced",
  };
}

/**
 * kill -9 the last service replica (the one the run reads final states through; it consumes
 * results beside the others), then start it again on its port. Results it held unacked go
 * back to the queue for the other replicas: none may be lost or reach the SDK twice.
 */
export function replicaKill(): Fault {
  let killed: number | undefined;
  let index = 0;
  return {
    name: "service replica kill -9",
    async strike({ stack }) {
      index = stack.replicas.length - 1;
      if (index < 1) throw new Error("replica kill -9 needs a stack of at least two replicas (replicas: 2)");
      const { child } = stack.replicas[index];
      killed = child.pid;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGKILL");
      await exited;
      await stack.restartReplica(index);
    },
    missed: ({ stack }) =>
      killed !== undefined && !alive(killed) && stack.replicas[index].child.pid !== killed
        ? undefined
        : "the replica was not killed and started again",
  };
}

/** Resets every endpoint connection to the broker (both sides see a reset). */
export function proxyReset(): Fault {
  let before = 0;
  return {
    name: "broker connection reset",
    async strike({ stack }) {
      before = stack.proxy.connections;
      stack.proxy.reset();
    },
    missed: ({ stack }) =>
      stack.proxy.connections > before ? undefined : "the endpoint never connected again after the reset",
  };
}

/** Silently drops every endpoint connection to the broker; AMQP heartbeats must notice. */
export function proxyDrop(): Fault {
  let before = 0;
  return {
    name: "broker connection silent drop",
    async strike({ stack }) {
      before = stack.proxy.connections;
      stack.proxy.drop();
    },
    missed: ({ stack }) =>
      stack.proxy.connections > before ? undefined : "the endpoint never connected again after the drop",
  };
}

export function formatReports(reports: FaultReport[]): string {
  const head = [
    "fault",
    "submitted",
    "succeeded",
    "failed (cause)",
    "re-run",
    "lost",
    "twice",
    "fault→next result",
    "fault→first new task done",
  ];
  const seconds = (ms: number | null) => (ms === null ? "-" : `${(ms / 1000).toFixed(2)} s`);
  const rows = reports.map((r) => [
    r.fault,
    String(r.submitted),
    String(r.succeeded),
    `${r.failed}${r.failedWithoutCause ? ` (+${r.failedWithoutCause} without cause)` : ""}`,
    String(r.rerun),
    String(r.lost),
    String(r.twice),
    seconds(r.faultToNextResultMs),
    seconds(r.faultToNewWorkMs),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  const out = [line(head), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)];
  for (const r of reports) {
    for (const [cause, n] of Object.entries(r.causes)) out.push(`  ${r.fault}: ${n} × ${cause}`);
  }
  return out.join("\n");
}

/** Anything `restart()` can bounce: a throwaway broker or database. */
export interface Restartable {
  restart(options?: { crash?: boolean }): Promise<void>;
}

/** Restarts the (throwaway) RabbitMQ node everything talks to; durable queues keep the tasks and results. */
export function brokerRestart(broker: Restartable): Fault {
  let restarted = false;
  return {
    name: "broker restart",
    async strike() {
      await broker.restart();
      restarted = true;
    },
    missed: () => (restarted ? undefined : "the broker was not restarted"),
  };
}

/** Restarts the service's (throwaway) Postgres server without a clean shutdown. */
export function postgresRestart(database: Restartable): Fault {
  let restarted = false;
  return {
    name: "Postgres restart",
    async strike() {
      await database.restart({ crash: true });
      restarted = true;
    },
    missed: () => (restarted ? undefined : "Postgres was not restarted"),
  };
}
