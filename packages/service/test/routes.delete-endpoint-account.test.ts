/**
 * With scoped broker accounts (`amqpManagementUrl`), deleting an endpoint also
 * deletes its RabbitMQ account, so the credentials its MEP was handed stop
 * working. Real service (PGlite), RabbitMQ and its management API.
 */
import { endpointBrokerUser } from "@conduit/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningService } from "../src/index.js";
import {
  deleteUsers,
  MANAGEMENT_URL,
  managementReachable,
  RestUser,
  replyCode,
  suiteTitle,
  userExists,
} from "./broker.helpers.js";
import { startTestService, type TestService } from "./helpers/service.js";

describe.skipIf(!managementReachable)(suiteTitle("DELETE /v1/endpoints/:id with scoped accounts"), () => {
  const users: string[] = [];
  let started: TestService;
  let service: RunningService;

  beforeAll(async () => {
    started = await startTestService({ amqpManagementUrl: MANAGEMENT_URL });
    service = started.value;
  });

  afterAll(async () => {
    await started?.dispose();
    await deleteUsers(users);
  });

  it("deletes the endpoint's broker account: its URL no longer connects", async () => {
    const alice = new RestUser(service.url, service.adminToken);
    const registered = await alice.registerEndpoint("scoped-delete");
    const user = endpointBrokerUser(registered.endpoint_id);
    users.push(user);
    expect(await userExists(user)).toBe(true);
    // The account works before the delete (it may passively check its command queue).
    expect(await replyCode(registered.amqp.url, (ch) => ch.checkQueue(registered.command_queue))).toBe(0);

    const response = await fetch(`${service.url}/v1/endpoints/${registered.endpoint_id}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${service.adminToken}` },
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ id: registered.endpoint_id, deleted: true });
    expect(await userExists(user)).toBe(false);
    await expect(replyCode(registered.amqp.url, (ch) => ch.checkQueue(registered.command_queue))).rejects.toThrow();
  });
});
