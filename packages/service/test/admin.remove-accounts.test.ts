/**
 * Removing an identity (`conduit-service user remove`, i.e. DELETE
 * /v1/admin/identities/:username) deletes at once the broker accounts that act
 * for it: its endpoints', the UEPs' that ran its tasks (on its endpoints or on
 * another's) or ran on its endpoints, and its task groups'; RabbitMQ then
 * closes their open connections. A removal refused (it owns endpoints or
 * tasks, no --force) leaves them all working. Real RabbitMQ and its
 * management API; the scoped accounts are the service's default.
 */
import {
  endpointBrokerUser,
  type RegisterEndpointResponse,
  type SubmitResponse,
  taskGroupBrokerUser,
  uepBrokerUser,
} from "@conduit/protocol";
import amqp, { type ChannelModel } from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningService } from "../src/service.js";
import {
  deleteUsers,
  eventually,
  managementReachable,
  RestUser,
  startCommands,
  suiteTitle,
  userExists,
} from "./broker.helpers.js";
import { startTestService, type TestService } from "./helpers/service.js";

describe.skipIf(!managementReachable)(suiteTitle("user remove deletes the identity's broker accounts"), () => {
  let started: TestService;
  let service: RunningService;
  /** Carol's endpoint (multi-user: Dave runs a UEP on it too) and Dave's (Carol runs a UEP on it). */
  let carolEndpoint: RegisterEndpointResponse;
  let daveEndpoint: RegisterEndpointResponse;
  let carolOnHers: SubmitResponse;
  let carolOnDaves: SubmitResponse;
  let daveOnCarols: SubmitResponse;
  /** The scoped URL each UEP was started with, by UEP id. */
  const uepUrls = new Map<string, string>();
  const connections: Array<{ user: string; connection: ChannelModel; closed: boolean }> = [];

  beforeAll(async () => {
    // Postgres: a first PGlite start spends seconds in initdb; the store does not matter here.
    started = await startTestService({}, "postgres");
    service = started.value;
    const carol = new RestUser(service.url, (await service.createIdentity("carol@example.org")).token);
    const dave = new RestUser(service.url, (await service.createIdentity("dave@example.org")).token);
    carolEndpoint = await carol.call("POST", "/endpoints", { name: "carol-ep", multi_user: true });
    daveEndpoint = await dave.call("POST", "/endpoints", { name: "dave-ep", multi_user: true });
    const carolFunction = await carol.registerFunction();
    carolOnHers = await carol.submit(carolEndpoint.endpoint_id, carolFunction);
    carolOnDaves = await carol.submit(daveEndpoint.endpoint_id, carolFunction);
    daveOnCarols = await dave.submit(carolEndpoint.endpoint_id, await dave.registerFunction());
    for (const endpoint of [carolEndpoint, daveEndpoint]) {
      for (const command of await startCommands(endpoint))
        if (command.amqpUrl) uepUrls.set(command.uepId, command.amqpUrl);
    }
  }, 60_000);

  afterAll(async () => {
    for (const { connection } of connections) await connection.close().catch(() => undefined);
    await started?.dispose();
    if (daveEndpoint) await deleteUsers([...carolsAccounts().keys(), endpointBrokerUser(daveEndpoint.endpoint_id)]);
  });

  /** Every account acting for Carol, and the URL it was handed out with. */
  function carolsAccounts(): Map<string, string> {
    const accounts = new Map<string, string>([[endpointBrokerUser(carolEndpoint.endpoint_id), carolEndpoint.amqp.url]]);
    for (const r of [carolOnHers, carolOnDaves, daveOnCarols]) {
      const url = uepUrls.get(r.uep_id);
      if (!url) throw new Error(`UEP ${r.uep_id} got no start command with a broker URL.`);
      accounts.set(uepBrokerUser(r.uep_id), url);
    }
    for (const r of [carolOnHers, carolOnDaves]) accounts.set(taskGroupBrokerUser(r.task_group_id), r.amqp.url);
    return accounts;
  }

  async function remove(force: boolean): Promise<number> {
    const response = await fetch(`${service.url}/v1/admin/identities/carol@example.org${force ? "?force=true" : ""}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${service.adminToken}` },
    });
    return response.status;
  }

  it("keeps every account working when the removal is refused (no --force)", async () => {
    expect(carolsAccounts().size).toBe(6);
    for (const [user, url] of carolsAccounts()) {
      const connection = await amqp.connect(url);
      const entry = { user, connection, closed: false };
      connection.on("error", () => undefined);
      connection.on("close", () => {
        entry.closed = true;
      });
      connections.push(entry);
    }
    expect(await remove(false)).toBe(409);
    for (const user of carolsAccounts().keys()) expect(await userExists(user), user).toBe(true);
    expect(connections.filter((c) => c.closed)).toEqual([]);
  });

  it("deletes them with --force, and RabbitMQ closes their connections", async () => {
    expect(await remove(true)).toBe(200);
    // Deleted before the route answered: no waiting here.
    for (const user of carolsAccounts().keys()) expect(await userExists(user), user).toBe(false);
    await eventually("RabbitMQ closes every connection of Carol's accounts", async () =>
      connections.every((c) => c.closed),
    );
    // Dave keeps his endpoint's account; his UEP on Carol's endpoint went with that endpoint.
    expect(await userExists(endpointBrokerUser(daveEndpoint.endpoint_id))).toBe(true);
    // And a removed account cannot log in again.
    await expect(amqp.connect(carolEndpoint.amqp.url)).rejects.toThrow(/ACCESS_REFUSED|403/);
  });
});
