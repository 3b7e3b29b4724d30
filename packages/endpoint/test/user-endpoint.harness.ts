/**
 * Test harness for the user endpoint process: a real UEP child process
 * (`dist/user-endpoint/uep-main.js`, so build first), fed its bootstrap on
 * stdin like the MEP does, on the real RabbitMQ under a unique endpoint id,
 * with a tap on the results and heartbeats that UEP publishes.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type BrokerLink,
  type CancelTasksMessage,
  connectBroker,
  DEFAULT_AMQP_URL,
  decodeMessage,
  HEARTBEATS_EXCHANGE,
  type HeartbeatMessage,
  heartbeatsRoutingKey,
  JSON_DATA,
  QUEUE_OPTIONS,
  RESULTS_EXCHANGE,
  type ResultMessage,
  resultsRoutingKey,
  SOURCE_CODE,
  type TaskBatchMessage,
  type TaskMessage,
  type TaskStatusMessage,
  uepName,
  uepTaskQueue,
} from "@conduit/protocol";
import { expect } from "vitest";
import type { UepBootstrap } from "../src/user-endpoint/bootstrap-types.js";

export const UEP_MAIN = fileURLToPath(new URL("../dist/user-endpoint/uep-main.js", import.meta.url));

/** A quick ThreadPoolEngine UEP config; heartbeats every second so idle and shutdown tests are short. */
export const THREAD_POOL_TEMPLATE = `engine:
  type: ThreadPoolEngine
heartbeat_period: 1
`;

export interface StartOptions {
  template?: UepBootstrap["template"] | string;
  schema?: string | null;
  userConfig?: Record<string, unknown>;
  allowedFunctions?: string[] | null;
  /** The MEP's config.yaml, parsed (e.g. `high_assurance`). */
  parentConfig?: Record<string, unknown>;
  mepPid?: number;
  /** Replaces the bootstrap line entirely. */
  stdinText?: string;
  /** Added to the UEP's environment. */
  env?: Record<string, string>;
  /** Its stdout and stderr appended to its endpoint.log, as the MEP starts it (else piped to `output()`). */
  outputToLog?: boolean;
}

export interface UepChild {
  child: ChildProcess;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** stdout + stderr so far. */
  output(): string;
}

export class UepHarness {
  readonly endpointId = randomUUID();
  readonly uepId = randomUUID();
  readonly uepName = uepName(this.endpointId, this.uepId);
  readonly queue = uepTaskQueue(this.endpointId, this.uepId);
  readonly userDir = mkdtempSync(join(tmpdir(), "conduit-uep-test-"));
  readonly results: ResultMessage[] = [];
  readonly statuses: TaskStatusMessage[] = [];
  readonly heartbeats: HeartbeatMessage[] = [];
  /** Result messages (`result` or `results`) that arrived, to see how results were batched. */
  resultMessages = 0;
  /** The kinds of those messages. */
  readonly resultKinds = new Set<string>();
  /** `running <task id>` / `result <task id>`, in the order they arrived. */
  readonly arrivals: string[] = [];
  /** The broker URL the UEP gets: guest's, or its own account's (see `open`). */
  amqpUrl = DEFAULT_AMQP_URL;
  private account: string | undefined;
  private link: BrokerLink | undefined;
  private readonly children: ChildProcess[] = [];

  /**
   * Declares what the service would (exchanges, the UEP's queue) and taps this endpoint's results and heartbeats.
   * With `ownAccount`, the UEP gets a broker account of its own, which is deleted, as the service does, as soon as
   * its last heartbeat reports a start failure (RabbitMQ then closes the UEP's connection).
   */
  async open(options: { ownAccount?: boolean } = {}): Promise<this> {
    if (options.ownAccount) {
      const user = `uep-test-${this.uepId}`;
      const password = randomUUID();
      await management("PUT", `/api/users/${user}`, { password, tags: "" });
      await management("PUT", `/api/permissions/%2F/${user}`, { configure: ".*", write: ".*", read: ".*" });
      this.account = user;
      this.amqpUrl = `amqp://${user}:${password}@127.0.0.1:5672`;
    }
    this.link = await connectBroker(DEFAULT_AMQP_URL, {
      name: "uep-test-harness",
      setup: async (ch) => {
        await ch.assertExchange(RESULTS_EXCHANGE, "topic", { durable: true });
        await ch.assertExchange(HEARTBEATS_EXCHANGE, "topic", { durable: true });
        await ch.assertQueue(this.queue, QUEUE_OPTIONS);
        const { queue: tap } = await ch.assertQueue("", { exclusive: true, autoDelete: true });
        await ch.bindQueue(tap, RESULTS_EXCHANGE, resultsRoutingKey(this.endpointId));
        await ch.bindQueue(tap, HEARTBEATS_EXCHANGE, heartbeatsRoutingKey(this.endpointId));
        await ch.consume(
          tap,
          (msg) => {
            if (!msg) return;
            const m = decodeMessage(msg.content, "result", "results", "task_status", "heartbeat");
            if (m.kind === "result" || m.kind === "results") {
              this.resultMessages++;
              this.resultKinds.add(m.kind);
              for (const r of m.kind === "result" ? [m] : m.results) {
                this.results.push(r);
                this.arrivals.push(`result ${r.taskId}`);
              }
            } else if (m.kind === "task_status") {
              this.statuses.push(m);
              for (const id of m.taskIds) this.arrivals.push(`running ${id}`);
            } else {
              this.heartbeats.push(m);
              if (m.error && this.account) void this.deleteAccount();
            }
          },
          { noAck: true },
        );
      },
    });
    return this;
  }

  /** `(a, b) => a + b` on [30, 12], or the given function source and arguments. */
  task(overrides: { source?: string; args?: unknown[]; functionId?: string } = {}): TaskMessage {
    return {
      v: 1,
      kind: "task",
      taskId: randomUUID(),
      functionId: overrides.functionId ?? randomUUID(),
      endpointId: this.endpointId,
      uepId: this.uepId,
      taskGroupId: randomUUID(),
      function: { strategy: SOURCE_CODE, data: overrides.source ?? "(a, b) => a + b" },
      args: { strategy: JSON_DATA, data: JSON.stringify({ args: overrides.args ?? [30, 12] }) },
    };
  }

  /** Publishes straight to the UEP's queue, as the service does through its direct exchange. */
  async publish(...tasks: TaskMessage[]): Promise<void> {
    for (const task of tasks) await this.link!.publish("", this.queue, task);
  }

  resultOf(taskId: string): ResultMessage | undefined {
    return this.results.find((r) => r.taskId === taskId);
  }

  /** The task's result, once the UEP has published it (polled, up to `timeout` ms). */
  async outcome(task: TaskMessage, timeout = 20_000): Promise<ResultMessage> {
    await expect.poll(() => this.resultOf(task.taskId), { timeout, interval: 50 }).toBeDefined();
    return this.resultOf(task.taskId) as ResultMessage;
  }

  bootstrap(options: StartOptions = {}): UepBootstrap {
    const template = options.template ?? THREAD_POOL_TEMPLATE;
    return {
      v: 1,
      endpointId: this.endpointId,
      uepId: this.uepId,
      uepName: this.uepName,
      mepPid: options.mepPid ?? process.pid,
      amqpUrl: this.amqpUrl,
      // The harness's link (guest) plays the service.
      serviceUser: "guest",
      template:
        typeof template === "string"
          ? { name: "user_config_template.yaml.j2", text: template, siblings: {} }
          : template,
      schema: options.schema ?? null,
      userEnvironment: {},
      userConfig: options.userConfig ?? {},
      userRuntime: null,
      parentConfig: options.parentConfig ?? {},
      mappedIdentity: null,
      identity: { id: randomUUID(), username: "tester@localhost" },
      allowedFunctions: options.allowedFunctions ?? null,
    };
  }

  /** Starts a UEP child as the MEP would; its stdin stays open until the test closes it. */
  start(options: StartOptions = {}): UepChild {
    let logFd: number | undefined;
    if (options.outputToLog) {
      mkdirSync(join(this.userDir, this.uepName), { recursive: true, mode: 0o700 });
      logFd = openSync(join(this.userDir, this.uepName, "endpoint.log"), "a", 0o600);
    }
    const child = spawn(process.execPath, [UEP_MAIN, this.uepName], {
      env: { ...process.env, ...options.env, CONDUIT_USER_DIR: this.userDir },
      stdio: ["pipe", logFd ?? "pipe", logFd ?? "pipe"],
    });
    if (logFd !== undefined) closeSync(logFd);
    this.children.push(child);
    let output = "";
    child.stdout?.on("data", (d) => {
      output += d;
    });
    child.stderr?.on("data", (d) => {
      output += d;
    });
    child.stdin?.on("error", () => {});
    child.stdin?.write(options.stdinText ?? `${JSON.stringify(this.bootstrap(options))}\n`);
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once("exit", (code, signal) => resolve({ code, signal })),
    );
    return { child, exit, output: () => output };
  }

  /** Messages ready in the UEP's queue (unacked deliveries of a live consumer are not counted). */
  async queueDepth(): Promise<number> {
    const ch = await this.link!.ready();
    return (await ch.checkQueue(this.queue)).messageCount;
  }

  /** The UEP's endpoint.log. */
  log(): string {
    try {
      return readFileSync(join(this.userDir, this.uepName, "endpoint.log"), "utf8");
    } catch {
      return "";
    }
  }

  /** The UEP's endpoint.log as its JSON lines (`msg` is the message; the log's own fields beside it). */
  logLines(): Array<{ msg: string; level: number; [field: string]: unknown }> {
    return this.log()
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as { msg: string; level: number; [field: string]: unknown });
  }

  private async deleteAccount(): Promise<void> {
    const user = this.account;
    this.account = undefined;
    if (user) await management("DELETE", `/api/users/${user}`);
  }

  async close(): Promise<void> {
    await this.deleteAccount();
    for (const child of this.children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    if (this.link) {
      const ch = await this.link.ready();
      await ch.deleteQueue(this.queue).catch(() => undefined);
      await this.link.close();
    }
    rmSync(this.userDir, { recursive: true, force: true });
  }
}

/** RabbitMQ's management API on the shared broker (guest is its administrator from loopback). */
async function management(method: string, path: string, body?: unknown): Promise<void> {
  const response = await fetch(`http://127.0.0.1:15672${path}`, {
    method,
    headers: {
      authorization: `Basic ${Buffer.from("guest:guest").toString("base64")}`,
      "content-type": "application/json",
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok && response.status !== 404) {
    throw new Error(`RabbitMQ management ${method} ${path}: HTTP ${response.status} ${await response.text()}`);
  }
}

/** A ThreadPoolEngine UEP with one worker, so tasks of a batch wait their turn in the UEP. */
export const ONE_WORKER = `engine:
  type: ThreadPoolEngine
  max_workers: 1
heartbeat_period: 1
`;

/** Appends a line to `marker` (one per run), then waits until `release` exists (when given). */
const MARK_AND_WAIT = `async (marker, release) => {
  const fs = await import("node:fs");
  fs.appendFileSync(marker, "ran\\n");
  while (release && !fs.existsSync(release)) await new Promise((r) => setTimeout(r, 20));
  return "done";
}`;

/**
 * A UEP harness with the service's part played by a link of its own (batches
 * and cancels published to the UEP's queue), and a scratch folder where tasks
 * made by `marking` leave a line each time they run. Open in `beforeEach`,
 * close in `afterEach`.
 */
export class TaskQueueFixture {
  readonly h = new UepHarness();
  readonly scratch = mkdtempSync(join(tmpdir(), "conduit-uep-queue-"));
  /** The service's part: publishes batches and cancels to the UEP's queue. */
  service!: BrokerLink;

  async open(): Promise<this> {
    await this.h.open();
    this.service = await connectBroker(DEFAULT_AMQP_URL, { name: "uep-queue-fixture" });
    return this;
  }

  async close(): Promise<void> {
    await this.service.close();
    await this.h.close();
    rmSync(this.scratch, { recursive: true, force: true });
  }

  /** A task that marks `<scratch>/<name>.ran` each time it runs, then waits for `release` (a path, when given). */
  marking(name: string, release: string | null = null): { task: TaskMessage; marker: string } {
    const marker = join(this.scratch, `${name}.ran`);
    return { task: this.h.task({ source: MARK_AND_WAIT, args: [marker, release] }), marker };
  }

  /** How many times the task of this marker ran. */
  runs(marker: string): number {
    return existsSync(marker) ? readFileSync(marker, "utf8").split("\n").length - 1 : 0;
  }

  /** Publishes one `tasks` message (the tasks may be malformed on purpose). */
  async publishBatch(tasks: unknown[]): Promise<void> {
    await this.service.publish("", this.h.queue, { v: 1, kind: "tasks", tasks } as TaskBatchMessage);
  }

  /** Publishes a `cancel` naming these tasks, as the service does. */
  async cancel(...tasks: TaskMessage[]): Promise<void> {
    const message: CancelTasksMessage = {
      v: 1,
      kind: "cancel",
      endpointId: this.h.endpointId,
      uepId: this.h.uepId,
      taskIds: tasks.map((t) => t.taskId),
    };
    await this.service.publish("", this.h.queue, message);
  }

  /** Consumers of the UEP's queue, as the broker counts them. */
  async consumers(): Promise<number> {
    const channel = await this.service.ready();
    return (await channel.checkQueue(this.h.queue)).consumerCount;
  }

  /** Kills the UEP and waits until the broker has seen its connection go (its unacked messages are back in the queue). */
  async kill(uep: UepChild): Promise<void> {
    uep.child.kill("SIGKILL");
    await uep.exit;
    await expect.poll(() => this.consumers(), { timeout: 15_000 }).toBe(0);
  }
}
