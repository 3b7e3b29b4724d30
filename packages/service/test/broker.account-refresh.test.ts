/**
 * Broker accounts off the submit path (issue 23): a derived account (a UEP's,
 * a task group's) is written once; later hand-outs answer from memory, and the
 * periodic look at it is one GET in the background that writes the account
 * again only when another replica deleted it. A real RabbitMQ management API.
 */
import { randomUUID } from "node:crypto";
import { uepBrokerUser } from "@conduit/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BrokerAccounts } from "../src/broker/broker-accounts.js";
import {
  deleteUsers,
  eventually,
  MANAGEMENT_URL,
  managementReachable,
  suiteTitle,
  userExists,
} from "./broker.helpers.js";
import { createVhost } from "./helpers/broker.js";
import type { Throwaway } from "./helpers/databases.js";

describe.skipIf(!managementReachable)(suiteTitle("derived broker accounts are refreshed only on change"), () => {
  let vhost: Throwaway<string>;
  const users: string[] = [];

  beforeAll(async () => {
    vhost = await createVhost();
  }, 60_000);

  afterAll(async () => {
    await deleteUsers(users);
    await vhost?.dispose();
  });

  it("writes a UEP's account once, looks at it in the background, and writes it again only once it is gone", async () => {
    // Every hand-out is due a look: the refresh is what is under test, not its period.
    const accounts = new BrokerAccounts(MANAGEMENT_URL, vhost.value, "secret", { recheckMs: 0 });
    const endpointId = randomUUID();
    const uepId = randomUUID();
    users.push(uepBrokerUser(uepId));
    const url = await accounts.uepUrl(endpointId, uepId);
    expect(accounts.accountWrites).toBe(1);
    expect(await userExists(uepBrokerUser(uepId))).toBe(true);

    // Hand-outs while the account exists: the same URL, looks (GETs) in the background, no write.
    for (let i = 0; i < 5; i++) {
      expect(await accounts.uepUrl(endpointId, uepId)).toBe(url);
      await eventually("the background look to finish", async () => accounts.rechecks > i);
    }
    expect(accounts.accountWrites).toBe(1);

    // Another replica deletes it (the UEP stopped there): the next look writes it again.
    await deleteUsers([uepBrokerUser(uepId)]);
    const rechecks = accounts.rechecks;
    expect(await accounts.uepUrl(endpointId, uepId)).toBe(url);
    await eventually("the account to be made again", () => userExists(uepBrokerUser(uepId)));
    expect(accounts.rechecks).toBe(rechecks + 1);
    expect(accounts.accountWrites).toBe(2);
  });
});
