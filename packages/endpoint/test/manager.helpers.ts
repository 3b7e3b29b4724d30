/**
 * Shared by the manager.* tests: the in-process service with a broker link
 * that publishes as the service does, an endpoint whose UEPs start light (a
 * one-worker ThreadPoolEngine), the start_uep commands the service sends,
 * the tasks it queues and a tap on the results the UEPs publish.
 */
import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  type BrokerLink,
  commandQueue,
  connectBroker,
  decodeMessage,
  JSON_DATA,
  QUEUE_OPTIONS,
  RESULTS_EXCHANGE,
  type ResultMessage,
  resultsRoutingKey,
  SOURCE_CODE,
  type StartUepCommand,
  type TaskMessage,
  uepName,
  uepTaskQueue,
} from "@conduit/protocol";
import { afterAll, beforeAll, expect } from "vitest";
import {
  cleanupProcesses,
  cliEnv,
  type Mep,
  runCli,
  startMep,
  startTestService,
  type TestService,
  tempUserDir,
} from "./cli.helpers.js";

export interface ServiceAndBroker {
  readonly service: TestService;
  /** Connected as the service's own broker user. */
  readonly broker: BrokerLink;
}

/**
 * Starts the service and a broker link (named `name`) before the file's tests;
 * after them, ends every process the tests started and closes both.
 */
export function useServiceAndBroker(name: string): ServiceAndBroker {
  const context = {} as { service: TestService; broker: BrokerLink };
  beforeAll(async () => {
    context.service = await startTestService();
    context.broker = await connectBroker(context.service.amqpUrl, { name });
  });
  afterAll(async () => {
    await cleanupProcesses();
    await context.broker?.close();
    await context.service?.close();
  });
  return context;
}

export const LIGHT_TEMPLATE = "engine:\n  type: ThreadPoolEngine\n  max_workers: 1\nidle_heartbeats_soft: 0\n";

export interface ConfiguredEndpoint {
  userDir: string;
  env: NodeJS.ProcessEnv;
  /** The endpoint's folder. */
  dir: string;
  /** The MEP's endpoint.log. */
  log: string;
}

/** `configure name` in a new user folder, with {@link LIGHT_TEMPLATE} and `config.yaml` when given. */
export async function configuredEndpoint(
  service: TestService,
  name: string,
  configYaml?: string,
): Promise<ConfiguredEndpoint> {
  const userDir = tempUserDir();
  const env = cliEnv(userDir, service);
  expect((await runCli(["configure", name], env)).code).toBe(0);
  const dir = join(userDir, name);
  writeFileSync(join(dir, "user_config_template.yaml.j2"), LIGHT_TEMPLATE);
  if (configYaml) writeFileSync(join(dir, "config.yaml"), configYaml);
  return { userDir, env, dir, log: join(dir, "endpoint.log") };
}

/** A {@link configuredEndpoint} with its MEP started. */
export async function runningEndpoint(
  service: TestService,
  name: string,
  configYaml?: string,
): Promise<ConfiguredEndpoint & { mep: Mep }> {
  const endpoint = await configuredEndpoint(service, name, configYaml);
  return { ...endpoint, mep: await startMep(name, endpoint.env) };
}

/** A start_uep command for a new UEP of `mep`'s endpoint (or any endpoint's), as the service sends it. */
export function startUepCommand(
  mep: Pick<Mep, "endpointId">,
  overrides: Partial<StartUepCommand> = {},
): StartUepCommand {
  const uepId = overrides.uepId ?? randomUUID();
  return {
    v: 1,
    kind: "start_uep",
    endpointId: mep.endpointId,
    uepId,
    uepName: uepName(mep.endpointId, uepId),
    identity: { id: randomUUID(), username: "ada@localhost" },
    userEndpointConfig: {},
    userRuntime: null,
    sentAt: Date.now(),
    ...overrides,
  };
}

/** Publishes `command` (or raw bytes) to the endpoint's command queue. */
export async function sendCommand(
  broker: BrokerLink,
  command: StartUepCommand | Buffer,
  endpointId: string,
): Promise<void> {
  await broker.publish("", commandQueue(endpointId), command);
}

/**
 * Puts `n` tasks (`source` applied to 1 and 2) in the UEP's queue, as the
 * service would before commanding the MEP: one message each, or with `batch`
 * all in one `tasks` message. Returns their task ids.
 */
export async function queueTasks(
  broker: BrokerLink,
  cmd: StartUepCommand,
  n: number,
  { source = "(a, b) => a + b", batch = false }: { source?: string; batch?: boolean } = {},
): Promise<string[]> {
  const channel = await broker.ready();
  const queue = uepTaskQueue(cmd.endpointId, cmd.uepId);
  await channel.assertQueue(queue, QUEUE_OPTIONS);
  const tasks: TaskMessage[] = [];
  for (let i = 0; i < n; i++) {
    const task: TaskMessage = {
      v: 1,
      kind: "task",
      taskId: randomUUID(),
      functionId: randomUUID(),
      endpointId: cmd.endpointId,
      uepId: cmd.uepId,
      taskGroupId: randomUUID(),
      function: { strategy: SOURCE_CODE, data: source },
      args: { strategy: JSON_DATA, data: JSON.stringify({ args: [1, 2] }) },
    };
    if (!batch) await broker.publish("", queue, task);
    tasks.push(task);
  }
  if (batch) await broker.publish("", queue, { v: 1, kind: "tasks", tasks });
  return tasks.map((task) => task.taskId);
}

/** Copies of every result published for this endpoint (beside the service's own consumer), as they come. */
export async function tapResults(broker: BrokerLink, endpointId: string): Promise<ResultMessage[]> {
  const channel = await broker.ready();
  const { queue } = await channel.assertQueue("", { exclusive: true, autoDelete: true });
  await channel.bindQueue(queue, RESULTS_EXCHANGE, resultsRoutingKey(endpointId));
  const results: ResultMessage[] = [];
  await channel.consume(
    queue,
    (msg) => {
      if (!msg) return;
      const m = decodeMessage(msg.content, "result", "results", "task_status");
      if (m.kind === "result") results.push(m);
      else if (m.kind === "results") results.push(...m.results);
    },
    { noAck: true },
  );
  return results;
}
