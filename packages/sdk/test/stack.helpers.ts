/**
 * The whole of Conduit for the Executor tests: the built `conduit-service`
 * (PGlite, a RabbitMQ vhost of its own) and one started `conduit-endpoint`, as
 * real child processes (scripts/local-stack.mjs), and a Client holding the
 * service's token. Run `npm run build` first. For the Client tests, the
 * service alone, in this process: {@link startInProcessService}.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type Credentials,
  connectBroker,
  RESULTS_EXCHANGE,
  type ResultMessage,
  resultsRoutingKey,
} from "@conduit/protocol";
import type { RunningService, ServiceOptions } from "@conduit/service";
import { createVhost, type LocalStack, startLocalStack } from "../../../scripts/local-stack.mjs";
import { Client } from "../src/client.js";

export interface TestStack {
  stack: LocalStack;
  endpointId: string;
  client: Client;
  stop(): Promise<void>;
}

export async function startTestStack(): Promise<TestStack> {
  const userDir = mkdtempSync(join(tmpdir(), "conduit-sdk-"));
  let stack: LocalStack;
  try {
    stack = await startLocalStack({ userDir, endpointName: "sdk_tests", isolated: true });
  } catch (err) {
    rmSync(userDir, { recursive: true, force: true });
    throw err;
  }
  const { token } = JSON.parse(readFileSync(join(userDir, "credentials.json"), "utf8")) as Credentials;
  return {
    stack,
    endpointId: stack.endpointId,
    client: new Client({ serviceUrl: stack.serviceUrl, token }),
    async stop() {
      try {
        await stack.stop();
      } finally {
        rmSync(userDir, { recursive: true, force: true });
      }
    },
  };
}

export interface InProcessService {
  service: RunningService;
  /** Closes the service, then removes its data directory and its vhost. */
  stop(): Promise<void>;
}

/** The service in this process (PGlite), with a RabbitMQ vhost and a data directory of its own; `options` on top. */
export async function startInProcessService(options: ServiceOptions = {}): Promise<InProcessService> {
  const { startService } = await import("@conduit/service");
  const disposers: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const dispose of disposers.reverse()) await dispose();
  };
  try {
    const vhost = await createVhost();
    disposers.push(() => vhost.dispose());
    const dataDir = await mkdtemp(join(tmpdir(), "conduit-sdk-service-"));
    disposers.push(() => rm(dataDir, { recursive: true, force: true }));
    const service = await startService({
      port: 0,
      dataDir,
      amqpUrl: vhost.url,
      writeCredentials: false,
      logLevel: "silent",
      ...options,
    });
    disposers.push(() => service.close());
    return { service, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Publishes a result for a task as the endpoint's MEP would (it fails tasks
 * itself): with the broker account its registration handed out, whose
 * user-id the service checks.
 */
export async function report(
  endpoint: { endpoint_id: string; amqp: { url: string } },
  uepId: string,
  taskId: string,
  outcome: Pick<ResultMessage, "state" | "result" | "error">,
): Promise<void> {
  const link = await connectBroker(endpoint.amqp.url, { name: "sdk-client-test-endpoint" });
  try {
    await link.publish(RESULTS_EXCHANGE, resultsRoutingKey(endpoint.endpoint_id), {
      v: 1,
      kind: "result",
      taskId,
      endpointId: endpoint.endpoint_id,
      uepId,
      completedAt: Date.now(),
      ...outcome,
    });
  } finally {
    await link.close();
  }
}
