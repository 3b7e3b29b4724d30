/**
 * A stand-in for the service's REST API (a real HTTP server on a free port)
 * that records every request and answers the contract's shapes, with the real
 * RabbitMQ behind it: each instance owns a unique task group whose result queue
 * it declares before answering a submit, as the service does. With `echo`, it
 * runs each task's source itself and publishes the result, like a tiny endpoint.
 * {@link startFakeExecutor} gives a test an Executor talking to one.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  type ApiErrorBody,
  type BrokerLink,
  type CallArguments,
  connectBroker,
  DEFAULT_AMQP_URL,
  deserializeData,
  type Payload,
  QUEUE_OPTIONS,
  type ResultMessage,
  type SubmitRequest,
  type SubmitResponse,
  serializeJson,
  taskGroupResultQueue,
  toWireError,
} from "@conduit/protocol";
import { onTestFinished } from "vitest";
import { Client } from "../src/client.js";
import { Executor } from "../src/executor.js";
import type { ExecutorOptions } from "../src/executor-options.js";

/** The ids the fake service's results name (UUIDs, as the protocol's schema requires). */
const FAKE_ENDPOINT_ID = "00000000-0000-4000-8000-00000000e1d0";
const FAKE_UEP_ID = "00000000-0000-4000-8000-00000000ae90";

export interface RecordedRequest {
  method: string;
  path: string;
  authorization: string | undefined;
  body: unknown;
  /** Size of the request body on the wire. */
  bytes: number;
}

export interface FakeServiceOptions {
  /** Run each submitted task here and publish its result to the task group queue. @default false */
  echo?: boolean;
  /** The broker URL handed to the SDK. @default DEFAULT_AMQP_URL */
  amqpUrl?: string;
  /** Answer a submit with this error instead. */
  refuseSubmit?: (request: SubmitRequest) => ApiErrorBody | undefined;
}

export interface FakeService {
  url: string;
  taskGroupId: string;
  resultQueue: string;
  requests: RecordedRequest[];
  /** The bodies of the submit requests, in arrival order. */
  submits(): SubmitRequest[];
  functionRegistrations(): RecordedRequest[];
  /** Publishes a result message to the task group queue (persistent, confirmed). */
  publish(result: Omit<ResultMessage, "v" | "kind" | "endpointId" | "uepId" | "completedAt">): Promise<void>;
  /** Publishes several results in one `results` message, as the service forwards them. */
  publishBatch(results: Array<Parameters<FakeService["publish"]>[0]>): Promise<void>;
  /** The result queue's ready messages and consumers, as the broker counts them. */
  queueStats(): Promise<{ messageCount: number; consumerCount: number }>;
  close(): Promise<void>;
}

export async function startFakeService(options: FakeServiceOptions = {}): Promise<FakeService> {
  const taskGroupId = randomUUID();
  const resultQueue = taskGroupResultQueue(taskGroupId);
  const requests: RecordedRequest[] = [];
  const functions = new Map<string, Payload>();
  const link: BrokerLink = await connectBroker(DEFAULT_AMQP_URL, { name: "sdk-test-fake-service", maxRetries: 3 });
  await (await link.ready()).assertQueue(resultQueue, QUEUE_OPTIONS);

  const resultMessage = (result: Parameters<FakeService["publish"]>[0]): ResultMessage => ({
    v: 1,
    kind: "result",
    endpointId: FAKE_ENDPOINT_ID,
    uepId: FAKE_UEP_ID,
    completedAt: Date.now(),
    ...result,
  });
  const publish: FakeService["publish"] = (result) => link.publish("", resultQueue, resultMessage(result));
  const publishBatch: FakeService["publishBatch"] = (results) =>
    link.publish("", resultQueue, { v: 1, kind: "results", results: results.map(resultMessage) });

  async function runTasks(request: SubmitRequest): Promise<void> {
    for (const task of request.tasks) {
      const { args } = deserializeData(task.args) as CallArguments;
      try {
        const source = functions.get(task.function_id)?.data;
        const fn = new Function(`return (${source}\n);`)() as (...a: unknown[]) => unknown;
        await publish({ taskId: task.task_id, state: "success", result: serializeJson(await fn(...args)) });
      } catch (err) {
        await publish({ taskId: task.task_id, state: "failed", error: toWireError(err) });
      }
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    const body = raw.length > 0 ? (JSON.parse(raw.toString("utf8")) as unknown) : undefined;
    const path = req.url ?? "";
    requests.push({
      method: req.method ?? "",
      path,
      authorization: req.headers.authorization,
      body,
      bytes: raw.length,
    });
    const answer = (status: number, value: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(value));
    };
    if (req.method === "POST" && path === "/v1/functions") {
      const functionId = randomUUID();
      functions.set(functionId, (body as { function: Payload }).function);
      return answer(200, { function_id: functionId });
    }
    if (req.method === "POST" && /^\/v1\/endpoints\/[^/]+\/submit$/.test(path)) {
      const request = body as SubmitRequest;
      const refusal = options.refuseSubmit?.(request);
      if (refusal) return answer(refusal.statusCode, refusal);
      const response: SubmitResponse = {
        task_group_id: taskGroupId,
        uep_id: randomUUID(),
        task_ids: request.tasks.map((t) => t.task_id),
        amqp: { url: options.amqpUrl ?? DEFAULT_AMQP_URL, serviceUser: "guest" },
        result_queue: resultQueue,
      };
      answer(200, response);
      if (options.echo) await runTasks(request);
      return;
    }
    answer(404, { statusCode: 404, code: "NOT_FOUND", error: "Not Found", message: `No route ${path}.` });
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    taskGroupId,
    resultQueue,
    requests,
    submits: () =>
      requests.filter((r) => r.method === "POST" && r.path.endsWith("/submit")).map((r) => r.body as SubmitRequest),
    functionRegistrations: () => requests.filter((r) => r.method === "POST" && r.path === "/v1/functions"),
    publish,
    publishBatch,
    async queueStats() {
      const { messageCount, consumerCount } = await (await link.ready()).checkQueue(resultQueue);
      return { messageCount, consumerCount };
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      try {
        await (await link.ready()).deleteQueue(resultQueue);
      } finally {
        await link.close();
      }
    },
  };
}

/**
 * An Executor (endpoint `ep-fake` unless `options` names one) talking to a new
 * fake service; when the test finishes, the Executor shuts down cancelling what
 * is pending, then the fake service closes.
 */
export async function startFakeExecutor(
  options: Partial<ExecutorOptions> | ((fake: FakeService) => Partial<ExecutorOptions>) = {},
  fakeOptions: FakeServiceOptions = {},
): Promise<{ ex: Executor; fake: FakeService }> {
  const fake = await startFakeService(fakeOptions);
  let ex: Executor | undefined;
  onTestFinished(async () => {
    await ex?.shutdown({ cancelFutures: true });
    await fake.close();
  });
  ex = new Executor({
    endpointId: "ep-fake",
    client: new Client({ serviceUrl: fake.url, token: "test-token" }),
    ...(typeof options === "function" ? options(fake) : options),
  });
  return { ex, fake };
}
