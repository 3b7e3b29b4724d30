/**
 * Shared by the manager.* tests: the in-process service with a broker link
 * that publishes as the service does, an endpoint whose UEPs start light (a
 * one-worker ThreadPoolEngine), and the start_uep commands the service sends.
 */
import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type BrokerLink, commandQueue, connectBroker, type StartUepCommand, uepName } from "@conduit/protocol";
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

/** A start_uep command for a new UEP of `mep`'s endpoint, as the service sends it. */
export function startUepCommand(mep: Mep, overrides: Partial<StartUepCommand> = {}): StartUepCommand {
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
