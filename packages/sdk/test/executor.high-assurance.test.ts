/**
 * The SDK's side of High Assurance, against the real service (in process,
 * PGlite, a RabbitMQ vhost of its own); the test plays the endpoint on the
 * broker with its registration's account. An HA endpoint's result reaches the
 * Executor only over REST (the pushed message is a notice without payload),
 * HA functions run on their endpoint only, and the service's disclaimer is
 * printed once per Executor (once per Client for registerFunction).
 */
import { randomUUID } from "node:crypto";
import { HA_DISCLAIMER, type RegisterEndpointResponse, type ResultMessage, serializeJson } from "@conduit/protocol";
import type { RunningService } from "@conduit/service";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createHighAssuranceKeys, type HighAssuranceKeys } from "../../../scripts/local-stack.mjs";
import { Client } from "../src/client.js";
import { ConduitApiError } from "../src/errors.js";
import { Executor } from "../src/executor.js";
import type { TaskFuture } from "../src/task-future.js";
import { type InProcessService, report, startInProcessService } from "./stack.helpers.js";

let running: InProcessService | undefined;
let service: RunningService;
/** Polls task states for the test, so the Executors' clients make only their own calls. */
let observer: Client;

beforeAll(async () => {
  running = await startInProcessService();
  service = running.service;
  observer = new Client({ serviceUrl: service.url, token: service.adminToken });
});

afterAll(async () => {
  await running?.stop();
});

let keys: HighAssuranceKeys | undefined;
/** An HA registration names an HA policy and an HA subscription. */
const haKeys = async (): Promise<HighAssuranceKeys> => {
  keys ??= await createHighAssuranceKeys(service.url, service.adminToken);
  return keys;
};
const newClient = () => new Client({ serviceUrl: service.url, token: service.adminToken, retries: 0 });

/**
 * Reports `value` as the task's result (or `outcome` as given) once the
 * service has stored the task, as its endpoint's MEP would.
 */
async function complete(
  endpoint: RegisterEndpointResponse,
  future: TaskFuture<unknown>,
  value: unknown,
  outcome: Pick<ResultMessage, "state" | "result" | "error"> = { state: "success", result: serializeJson(value) },
) {
  await expect
    .poll(() =>
      observer.getTask(future.taskId).then(
        () => true,
        () => false,
      ),
    )
    .toBe(true);
  await report(endpoint, randomUUID(), future.taskId, outcome);
}

/** How often the disclaimer was written to stderr while `run` ran. */
async function disclaimersDuring(run: () => Promise<void>): Promise<number> {
  const write = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
  try {
    await run();
    return write.mock.calls.filter(([text]) => String(text) === `${HA_DISCLAIMER}\n`).length;
  } finally {
    write.mockRestore();
  }
}

describe("High Assurance in the SDK", () => {
  it("fetches an HA endpoint's results over REST: the pushed message is a notice without payload", async () => {
    const client = newClient();
    const endpoint = await client.registerEndpoint({ name: "phi", ...(await haKeys()) });
    const executor = new Executor({ endpointId: endpoint.endpoint_id, client });
    const pushed: ResultMessage[] = [];
    // What the result queue delivers, as the Executor gets it.
    const target = executor as unknown as { onResults(results: ResultMessage[], queue: string): void };
    const onResults = target.onResults.bind(executor);
    vi.spyOn(target, "onResults").mockImplementation((results, queue) => {
      pushed.push(...results);
      onResults(results, queue);
    });
    const getTask = vi.spyOn(client, "getTask");

    const fnId = await executor.registerFunction((x: number) => x * 2, { haEndpointId: endpoint.endpoint_id });
    const ok = executor.submitToRegisteredFunction<string>(fnId, 21);
    // Not what the function computes: the value the endpoint reported, as the service stored it.
    await complete(endpoint, ok, "regulated 42");
    expect(await ok).toBe("regulated 42");
    expect(getTask).toHaveBeenCalledWith(ok.taskId);
    expect(pushed).toEqual([expect.objectContaining({ taskId: ok.taskId, state: "success", highAssurance: true })]);
    expect(pushed[0]).not.toHaveProperty("result");
    expect(pushed[0]).not.toHaveProperty("error");

    // A failure's error too: the notice says `failed`, the error comes over REST.
    const bad = executor.submitToRegisteredFunction(fnId, 1);
    await complete(endpoint, bad, undefined, {
      state: "failed",
      error: { code: "TASK_EXCEPTION", name: "RangeError", message: "patient 7 out of range" },
    });
    await expect(bad).rejects.toMatchObject({ name: "RangeError", message: "patient 7 out of range" });
    expect(pushed[1]).toMatchObject({ taskId: bad.taskId, state: "failed", highAssurance: true });
    expect(pushed[1]).not.toHaveProperty("error");
    await executor.shutdown();
  });

  it("prints the disclaimer once per Executor and once per Client, and only for High Assurance", async () => {
    const client = newClient();
    const ha = await client.registerEndpoint({ name: "phi", ...(await haKeys()) });
    const plain = await client.registerEndpoint({ name: "lab" });

    const first = new Executor({ endpointId: ha.endpoint_id, client });
    // A registration, then two submits (two requests): one disclaimer.
    expect(
      await disclaimersDuring(async () => {
        const fnId = await first.registerFunction((x: number) => x + 1, { haEndpointId: ha.endpoint_id });
        const a = first.submitToRegisteredFunction(fnId, 1);
        await complete(ha, a, 2);
        await a;
        const b = first.submit((x: number) => x - 1, 1);
        await complete(ha, b, 0);
        await b;
      }),
    ).toBe(1);
    await first.shutdown();

    // Another Executor on the same Client says it again, once.
    const second = new Executor({ endpointId: ha.endpoint_id, client });
    expect(
      await disclaimersDuring(async () => {
        const c = second.submit((x: number) => x * 3, 1);
        await complete(ha, c, 3);
        await c;
      }),
    ).toBe(1);
    await second.shutdown();

    // A Client's registrations: once for that Client.
    expect(
      await disclaimersDuring(async () => {
        await client.registerFunction((x: number) => x * 5, { haEndpointId: ha.endpoint_id });
        await client.registerFunction((x: number) => x * 7, { haEndpointId: ha.endpoint_id });
      }),
    ).toBe(1);

    // Nothing for an endpoint that is not High Assurance.
    const ordinary = new Executor({ endpointId: plain.endpoint_id, client: newClient() });
    expect(
      await disclaimersDuring(async () => {
        const d = ordinary.submit((x: number) => x, 1);
        await complete(plain, d, 1);
        expect(await d).toBe(1);
      }),
    ).toBe(0);
    await ordinary.shutdown();
  });

  it("runs an HA function only on its endpoint: elsewhere the future rejects with a 403 naming both", async () => {
    const client = newClient();
    const ha = await client.registerEndpoint({ name: "phi", ...(await haKeys()) });
    const plain = await client.registerEndpoint({ name: "lab" });
    const fnId = await client.registerFunction((x: number) => -x, { haEndpointId: ha.endpoint_id });
    const elsewhere = new Executor({ endpointId: plain.endpoint_id, client });
    const refused = elsewhere.submitToRegisteredFunction(fnId, 1);
    const error = await refused.then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(ConduitApiError);
    expect(error).toMatchObject({
      statusCode: 403,
      code: "HA_FUNCTION_NOT_PERMITTED",
      message: expect.stringContaining(
        `Function ${fnId} is a High-Assurance function of endpoint ${ha.endpoint_id} and may not run on endpoint ${plain.endpoint_id}`,
      ),
    });
    await elsewhere.shutdown();
    // And a registration for an endpoint that is not High Assurance is refused in one sentence.
    await expect(client.registerFunction((x: number) => x, { haEndpointId: plain.endpoint_id })).rejects.toThrow(
      `Endpoint ${plain.endpoint_id} is not a High-Assurance endpoint`,
    );
  });
});
