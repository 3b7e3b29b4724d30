/**
 * `conduit-service start --amqp-queue-type quorum` on a fresh vhost: tasks run
 * through an endpoint (its MEP, a UEP, a HighThroughputEngine block) and come
 * back, and the management API shows every Conduit queue as a quorum queue
 * (the endpoint only checks the queues the service made, whatever their type).
 * A service started with the default, classic, on those queues refuses to
 * start with one sentence naming --amqp-queue-type.
 */
import type { QueueType } from "@conduit/protocol";
import { Executor } from "@conduit/sdk";
import { afterAll, beforeAll, expect, it } from "vitest";
import { compileOptions } from "../../packages/service/src/service-options.js";
import { createPostgresDatabase, type Throwaway } from "../../packages/service/test/helpers/databases.js";
import { freePort, startService } from "../../scripts/local-stack.mjs";
import { type ChaosStack, startChaosStack } from "../chaos/harness.js";

let stack: ChaosStack | undefined;
let database: Throwaway<string> | undefined;
beforeAll(async () => {
  // Postgres, as a production layout has (and quicker to start than a new PGlite store).
  database = await createPostgresDatabase();
  stack = await startChaosStack({ serviceArgs: ["--amqp-queue-type", "quorum", "--database-url", database.value] });
}, 120_000);
afterAll(async () => {
  await stack?.dispose();
  await database?.dispose();
});

interface ManagedQueue {
  name: string;
  type: string;
  durable: boolean;
  arguments: Record<string, unknown>;
}

async function queuesOf(amqpUrl: string): Promise<ManagedQueue[]> {
  const vhost = decodeURIComponent(new URL(amqpUrl).pathname.slice(1));
  const answer = await fetch(`http://127.0.0.1:15672/api/queues/${encodeURIComponent(vhost)}`, {
    headers: { authorization: `Basic ${Buffer.from("guest:guest").toString("base64")}` },
  });
  expect(answer.status).toBe(200);
  return (await answer.json()) as ManagedQueue[];
}

it("runs tasks through an endpoint on quorum queues, every one of them a quorum queue", {
  timeout: 90_000,
}, async () => {
  if (!stack) throw new Error("the stack did not start");
  const ex = new Executor({ endpointId: stack.endpointId, client: stack.client });
  try {
    const futures = Array.from({ length: 8 }, (_, i) => ex.submit((a: number) => a * 2, i));
    expect(await Promise.all(futures.map((f) => f.result()))).toEqual([0, 2, 4, 6, 8, 10, 12, 14]);
  } finally {
    await ex.shutdown({ wait: false, cancelFutures: true });
  }
  const queues = await queuesOf(stack.amqpUrl);
  const kinds = (pattern: RegExp) => queues.filter((q) => pattern.test(q.name));
  // The service's two, the MEP's commands, the UEP's tasks, the task group's results.
  expect(kinds(/^conduit\.(results|heartbeats)$/)).toHaveLength(2);
  expect(kinds(/^ep\.[0-9a-f-]{36}\.commands$/)).toHaveLength(1);
  expect(kinds(/^uep\.[0-9a-f-]{36}\.[0-9a-f-]{36}\.tasks$/)).toHaveLength(1);
  expect(kinds(/^tg\.[0-9a-f-]{36}\.results$/)).toHaveLength(1);
  expect(queues.map((q) => [q.name, q.type, q.durable])).toEqual(queues.map((q) => [q.name, "quorum", true]));
  expect(kinds(/^tg\./)[0].arguments).toMatchObject({ "x-queue-type": "quorum", "x-expires": expect.any(Number) });
});

it("refuses to start a classic service on the quorum queues, naming --amqp-queue-type", {
  timeout: 90_000,
}, async () => {
  if (!stack) throw new Error("the stack did not start");
  const started = startService({
    env: stack.env,
    port: await freePort(),
    args: ["--amqp-url", stack.amqpUrl, "--data-dir", `${stack.userDir}/classic-service`],
  });
  await expect(started).rejects.toThrow(
    /The broker's queue conduit\.results is a quorum queue, but this service declares classic queues \(--amqp-queue-type classic\); start the service with the --amqp-queue-type the queues were made with/,
  );
});

it("refuses a queue type it does not know in one sentence", () => {
  expect(() => compileOptions({ dataDir: "/tmp/unused", amqpQueueType: "stream" as QueueType })).toThrow(
    'amqpQueueType "stream" is not one of classic, quorum (--amqp-queue-type).',
  );
});
