/**
 * With `amqpManagementUrl`, an endpoint and each of its UEPs get RabbitMQ
 * accounts reaching only their own queues: proved with amqplib against the
 * real broker (ACCESS_REFUSED outside them), then with a real MEP and UEP
 * running a task to its result on those accounts.
 */
import { randomUUID } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  commandQueue,
  decodeMessage,
  endpointBrokerUser,
  type RegisterEndpointResponse,
  type StartUepCommand,
  TASKS_EXCHANGE,
  uepBrokerUser,
  uepTaskQueue,
} from "@conduit/protocol";
import { Client, serializeArguments } from "@conduit/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type E2eStack, withStack } from "../../../test/e2e/helpers.js";
import type { RunningService } from "../src/service.js";
import { deleteUsers, MANAGEMENT_URL, managementReachable, replyCode, suiteTitle } from "./broker.helpers.js";
import { openChannel } from "./helpers/broker.js";
import { startTestService, type TestService } from "./helpers/service.js";

/** Users the tests made (global in RabbitMQ, unlike the vhosts they live in). */
const users = new Set<string>();

const add = (a: number, b: number) => a + b;

describe.skipIf(!managementReachable)(`scoped broker accounts (${suiteTitle})`, () => {
  afterAll(() => deleteUsers(users));

  describe("accounts from the service", () => {
    let started: TestService;
    let service: RunningService;
    beforeAll(async () => {
      started = await startTestService({ amqpManagementUrl: MANAGEMENT_URL });
      service = started.value;
    });
    afterAll(() => started?.dispose());

    it("lets each endpoint and UEP reach only its own queues", async () => {
      const client = new Client({ serviceUrl: service.url, token: service.adminToken });
      const registered: RegisterEndpointResponse = await client.registerEndpoint({ name: "iso" });
      const other = await client.registerEndpoint({ name: "other" });
      const endpointId = registered.endpoint_id;
      users.add(endpointBrokerUser(endpointId)).add(endpointBrokerUser(other.endpoint_id));
      const epUrl = new URL(registered.amqp.url);
      expect(decodeURIComponent(epUrl.username)).toBe(endpointBrokerUser(endpointId));
      expect(epUrl.pathname).toBe(new URL(started.amqpUrl).pathname);

      const functionId = await client.registerFunction(add);
      const submit = (config: Record<string, unknown>) =>
        client.submit(endpointId, {
          tasks: [
            {
              task_id: randomUUID(),
              function_id: functionId,
              args: serializeArguments([1, 2]),
            },
          ],
          user_endpoint_config: config,
        });
      const a = await submit({ which: "a" });
      const b = await submit({ which: "b" });
      expect(a.uep_id).not.toBe(b.uep_id);
      users.add(uepBrokerUser(a.uep_id)).add(uepBrokerUser(b.uep_id));

      // The endpoint's own account reads its commands.
      const ep = await openChannel(registered.amqp.url);
      const commands = new Map<string, StartUepCommand>();
      try {
        for (;;) {
          const msg = await ep.channel.get(commandQueue(endpointId), { noAck: true });
          if (msg === false) break;
          const command = decodeMessage(msg.content, "start_uep");
          commands.set(command.uepId, command);
        }
      } finally {
        await ep.close();
      }
      const urlA = commands.get(a.uep_id)?.amqpUrl;
      const urlB = commands.get(b.uep_id)?.amqpUrl;
      expect(urlA && decodeURIComponent(new URL(urlA).username)).toBe(uepBrokerUser(a.uep_id));
      expect(urlB).toBeTruthy();
      if (!urlA) return;

      const queueA = uepTaskQueue(endpointId, a.uep_id);
      const queueB = uepTaskQueue(endpointId, b.uep_id);
      // UEP A: its own queue yes (declare and consume)...
      expect(
        await replyCode(urlA, async (ch) => {
          await ch.assertQueue(queueA, { durable: true });
          await ch.consume(queueA, () => undefined);
        }),
      ).toBe(0);
      // ...B's queue, the tasks exchange: 403 ACCESS_REFUSED.
      expect(await replyCode(urlA, (ch) => ch.consume(queueB, () => undefined))).toBe(403);
      expect(await replyCode(urlA, (ch) => ch.assertQueue(queueB, { durable: true }))).toBe(403);
      expect(
        await replyCode(urlA, async (ch) => {
          ch.publish(TASKS_EXCHANGE, queueB, Buffer.from("{}"));
          // The refusal closes the channel asynchronously; a round trip surfaces it.
          await ch.checkQueue(queueA);
          await new Promise((resolve) => setTimeout(resolve, 200));
          await ch.checkQueue(queueA);
        }),
      ).toBe(403);
      // The endpoint's account cannot consume another endpoint's commands.
      expect(
        await replyCode(registered.amqp.url, (ch) => ch.consume(commandQueue(other.endpoint_id), () => undefined)),
      ).toBe(403);
    });
  });

  describe("a task end to end on scoped accounts", () => {
    let stack: E2eStack;
    beforeAll(async () => {
      stack = await withStack({ endpointName: "scoped", serviceArgs: ["--amqp-management-url", MANAGEMENT_URL] });
      users.add(endpointBrokerUser(stack.endpointId));
    }, 90_000);
    afterAll(async () => {
      await stack?.dispose();
    });

    it("runs a task to its result", async () => {
      const ex = stack.executor({ scoped: true });
      const future = ex.submit(add, 40, 2);
      expect(await future.result()).toBe(42);
      // The MEP ran on its own account, and no log holds a password of one.
      const logs = [stack.endpoint.output.stdout, stack.endpoint.output.stderr, stack.service.output.stdout];
      for (const file of readdirSync(stack.userDir, { recursive: true, encoding: "utf8" })) {
        if (file.endsWith(".log")) logs.push(readFileSync(join(stack.userDir, file), "utf8"));
      }
      const text = logs.join("\n");
      expect(text).toContain(`${endpointBrokerUser(stack.endpointId)}:***@`);
      expect(text).not.toMatch(/conduit-u?ep-[0-9a-f-]+:(?!\*\*\*@)[^@\s]+@/);
    }, 90_000);
  });
});
