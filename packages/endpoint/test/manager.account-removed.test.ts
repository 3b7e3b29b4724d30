/**
 * An endpoint whose broker account is deleted (as `conduit-service user
 * remove` does) stops instead of reconnecting forever (issue 15, property 6).
 * Real accounts of their own, made through RabbitMQ's management API on a
 * throwaway vhost, are deleted mid-run: the UEP exits with its own code (4)
 * and one sentence, its MEP logs why and does not restart it; the MEP itself
 * reports its own account's deletion with one sentence and `start` exits 1
 * (`list`: Failed, broker account removed).
 * A connection closed for any other reason still reconnects.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type BrokerLink,
  commandQueue,
  connectBroker,
  endpointBrokerUser,
  HEARTBEATS_EXCHANGE,
  QUEUE_OPTIONS,
  RESULTS_EXCHANGE,
  TASKS_EXCHANGE,
  uepBrokerUser,
  uepTaskQueue,
} from "@conduit/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVhost } from "../../../scripts/local-stack.mjs";
import { parseManagerConfig } from "../dist/config/manager-config.js";
import { createLogger } from "../dist/logging.js";
import { endpointPaths } from "../dist/manager/endpoint-dir.js";
import { ManagerEndpoint } from "../dist/manager/manager-endpoint.js";
import { cleanupProcesses, cliEnv, listStates, readLog, runCli, startMep, tempUserDir } from "./cli.helpers.js";
import { startUepCommand } from "./manager.helpers.js";

// From dist: the MEP spawns its UEPs through the built CLI next to its own module.

const MANAGEMENT = "http://127.0.0.1:15672/api";
const HEADERS = {
  authorization: `Basic ${Buffer.from("guest:guest").toString("base64")}`,
  "content-type": "application/json",
};

let vhost: { url: string; dispose(): Promise<void> };
let vhostName = "";
let admin: BrokerLink;
const users = new Set<string>();
const dirs: string[] = [];

async function api(method: string, path: string, body?: object): Promise<number> {
  const response = await fetch(`${MANAGEMENT}${path}`, {
    method,
    headers: HEADERS,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  await response.arrayBuffer();
  return response.status;
}

/** An account of its own, allowed on the test vhost only; its broker URL. */
async function makeAccount(user: string): Promise<string> {
  const password = randomBytes(12).toString("hex");
  expect(await api("PUT", `/users/${encodeURIComponent(user)}`, { password, tags: "" })).toBeLessThan(300);
  users.add(user);
  expect(
    await api("PUT", `/permissions/${encodeURIComponent(vhostName)}/${encodeURIComponent(user)}`, {
      configure: ".*",
      write: ".*",
      read: ".*",
    }),
  ).toBeLessThan(300);
  return `amqp://${encodeURIComponent(user)}:${password}@127.0.0.1:5672/${encodeURIComponent(vhostName)}`;
}

async function deleteAccount(user: string): Promise<void> {
  expect(await api("DELETE", `/users/${encodeURIComponent(user)}`)).toBe(204);
  users.delete(user);
}

async function eventually(check: () => boolean, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  vhost = await createVhost();
  vhostName = decodeURIComponent(new URL(vhost.url).pathname.slice(1));
  admin = await connectBroker(vhost.url, {
    name: "account-removed-test",
    setup: async (ch) => {
      await ch.assertExchange(TASKS_EXCHANGE, "direct", { durable: true });
      await ch.assertExchange(RESULTS_EXCHANGE, "topic", { durable: true });
      await ch.assertExchange(HEARTBEATS_EXCHANGE, "topic", { durable: true });
    },
  });
});

afterAll(async () => {
  await cleanupProcesses();
  for (const user of users) await api("DELETE", `/users/${encodeURIComponent(user)}`).catch(() => undefined);
  await admin?.close();
  await vhost?.dispose();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("a deleted broker account", () => {
  it("stops the UEP (exit 4, not restarted) and then the MEP, each with one sentence", async () => {
    const endpointId = randomUUID();
    const uepId = randomUUID();
    const userDir = mkdtempSync(join(tmpdir(), "conduit-acct-"));
    dirs.push(userDir);
    const ep = endpointPaths(userDir, "ep");
    mkdirSync(ep.dir);
    const configYaml = "heartbeat_period: 1\n";
    writeFileSync(ep.config, configYaml);
    writeFileSync(
      ep.template,
      "engine:\n  type: ThreadPoolEngine\n  max_workers: 1\nheartbeat_period: 1\nidle_heartbeats_soft: 1000\n",
    );
    // What the service does at registration: the command queue, bound; the MEP's account may only use it.
    const ch = await admin.ready();
    await ch.assertQueue(commandQueue(endpointId), QUEUE_OPTIONS);
    await ch.bindQueue(commandQueue(endpointId), TASKS_EXCHANGE, commandQueue(endpointId));
    await ch.assertQueue(uepTaskQueue(endpointId, uepId), QUEUE_OPTIONS);
    const mepUser = endpointBrokerUser(endpointId);
    const uepUser = uepBrokerUser(uepId);
    const mepUrl = await makeAccount(mepUser);
    const uepUrl = await makeAccount(uepUser);

    const refusals: string[] = [];
    const manager = new ManagerEndpoint({
      name: "ep",
      ep,
      config: parseManagerConfig(configYaml, ep.config),
      endpointId,
      amqpUrl: mepUrl,
      serviceUser: admin.user,
      userDir,
      localUser: "root",
      log: createLogger({ file: ep.log, console: false, debug: false, name: "MEP" }),
      onAccountRefused: (message) => refusals.push(message),
    });
    try {
      await manager.start();
      const command = startUepCommand({ endpointId }, { uepId, amqpUrl: uepUrl });
      await admin.publish(TASKS_EXCHANGE, commandQueue(endpointId), command);
      const uepLog = join(userDir, command.uepName, "endpoint.log");
      await eventually(() => readLog(uepLog).includes("Consuming"), "the UEP to consume");

      await deleteAccount(uepUser);
      await eventually(() => readLog(ep.log).includes("not restarting it"), "the MEP to see the UEP stop");
      expect(readLog(uepLog)).toContain(
        `The broker no longer accepts this user endpoint's account ${uepUser} (it was deleted, e.g. by conduit-service user remove); the user endpoint stops.`,
      );
      const mepLog = readLog(ep.log);
      expect(mepLog).toMatch(/Command return code: 4 \(\d+\)/);
      expect(mepLog).toContain(
        `User endpoint ${command.uepName} stopped: the broker no longer accepts its account ${uepUser} (it was deleted, e.g. by conduit-service user remove); not restarting it.`,
      );
      expect(mepLog).not.toContain("starting it again");
      expect(refusals).toEqual([]);

      await deleteAccount(mepUser);
      await eventually(() => refusals.length > 0, "the MEP to report its own account refused");
      const sentence = `The broker no longer accepts this endpoint's account ${mepUser} (it was deleted, e.g. by conduit-service user remove); the endpoint stops: register it again with conduit-endpoint start.`;
      expect(refusals).toEqual([sentence]);
      expect(readLog(ep.log)).toContain(sentence);
    } finally {
      await manager.shutdown();
    }
  }, 90_000);

  it("makes `conduit-endpoint start` exit 1 with the sentence when its registered account is deleted", async () => {
    const { startService } = await import("@conduit/service");
    const dataDir = mkdtempSync(join(tmpdir(), "conduit-acct-svc-"));
    dirs.push(dataDir);
    // Scoped accounts: registration makes the endpoint its own RabbitMQ account, as in production.
    const service = await startService({
      port: 0,
      dataDir,
      writeCredentials: false,
      amqpUrl: vhost.url,
      amqpManagementUrl: "http://guest:guest@127.0.0.1:15672",
    });
    try {
      const userDir = tempUserDir();
      const env = cliEnv(userDir, { url: service.url, token: service.adminToken });
      expect((await runCli(["configure", "gone"], env)).code).toBe(0);
      const mep = await startMep("gone", env);
      const user = endpointBrokerUser(mep.endpointId);
      users.add(user);
      await deleteAccount(user);
      const exit = await mep.exited;
      const sentence = `The broker no longer accepts this endpoint's account ${user} (it was deleted, e.g. by conduit-service user remove); the endpoint stops: register it again with conduit-endpoint start.`;
      expect(exit.code).toBe(1);
      expect(mep.output.stderr).toBe(`Error: ${sentence}\n`);
      expect(readLog(join(userDir, "gone", "endpoint.log"))).toContain(sentence);
      expect((await listStates(env)).get("gone")).toEqual({
        id: mep.endpointId,
        status: "Failed",
        cause: "broker account removed",
      });
    } finally {
      await service.close();
    }
  }, 90_000);

  it("still reconnects when the connection is closed for another reason", async () => {
    const user = `conduit-test-${randomUUID()}`;
    const url = await makeAccount(user);
    const link = await connectBroker(url, { name: `reconnect-test-${user}` });
    const failures: Error[] = [];
    link.on("failed", (err: Error) => failures.push(err));
    let reconnected = false;
    link.on("connect", () => {
      reconnected = true;
    });
    try {
      // Close its connection from the server side, as an operator or a broker restart would.
      let closed = 0;
      for (let i = 0; i < 100 && closed === 0; i++) {
        const response = await fetch(`${MANAGEMENT}/connections`, { headers: HEADERS });
        const connections = (await response.json()) as Array<{ name: string; user: string }>;
        for (const c of connections.filter((c) => c.user === user)) {
          closed += (await api("DELETE", `/connections/${encodeURIComponent(c.name)}`)) === 204 ? 1 : 0;
        }
        if (closed === 0) await new Promise((r) => setTimeout(r, 200));
      }
      expect(closed).toBeGreaterThan(0);
      await eventually(() => reconnected, "the link to reconnect");
      expect(failures).toEqual([]);

      await deleteAccount(user);
      await eventually(() => failures.length > 0, "the link to give up");
      expect((failures[0] as Error & { code?: string }).code).toBe("BROKER_ACCOUNT_REFUSED");
      await expect(link.ready()).rejects.toMatchObject({ code: "BROKER_ACCOUNT_REFUSED" });
    } finally {
      await link.close();
    }
  }, 60_000);
});
