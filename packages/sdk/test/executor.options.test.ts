/**
 * Executor options checked at construction, and what they change on the wire:
 * against the stand-in service of helpers.ts (a real HTTP server) and the real
 * RabbitMQ.
 */
import { JSON_DATA, STRUCTURED_DATA } from "@conduit/protocol";
import { describe, expect, it } from "vitest";
import { Client } from "../src/client.js";
import { CancelledError, FutureCancelledError } from "../src/errors.js";
import { Executor } from "../src/executor.js";
import type { ExecutorOptions } from "../src/executor-options.js";
import { type FakeServiceOptions, startFakeExecutor } from "./helpers.js";

const setup = (options: Partial<ExecutorOptions> = {}, fakeOptions: FakeServiceOptions = { echo: true }) =>
  startFakeExecutor(options, fakeOptions);

const client = new Client({ serviceUrl: "http://127.0.0.1:9", token: "t" });
const construct = (options: Partial<ExecutorOptions>) => () => new Executor({ endpointId: "ep", client, ...options });

describe("Executor options", () => {
  it("refuses a serializer that is not a data strategy, naming the valid ones", () => {
    expect(construct({ serializer: "conduit.PickleData" as ExecutorOptions["serializer"] })).toThrow(
      'serializer "conduit.PickleData" is not a data strategy; use one of "conduit.JSONData", "conduit.StructuredData".',
    );
  });

  it("refuses an amqpPort that is not a TCP port", () => {
    for (const port of [0, 70_000, 1.5]) {
      expect(construct({ amqpPort: port })).toThrow(
        `amqpPort must be a TCP port (1-65535), got ${port}; leave it out to use the service's.`,
      );
    }
  });

  it("refuses a resourceSpecification that is not a plain object", () => {
    for (const spec of [new Map([["num_nodes", 2]]), [2], "num_nodes=2"]) {
      expect(construct({ resourceSpecification: spec as unknown as Record<string, unknown> })).toThrow(
        "resourceSpecification must be an object of named values, e.g. { num_nodes: 2 }.",
      );
    }
  });

  it("sends arguments as StructuredData by default and as JSONData when asked", async () => {
    const structured = await setup();
    expect(await structured.ex.submit((d: Date) => d.getUTCFullYear(), new Date(Date.UTC(2020, 1, 1)))).toBe(2020);
    expect(structured.fake.submits()[0].tasks[0].args.strategy).toBe(STRUCTURED_DATA);

    const json = await setup({ serializer: JSON_DATA });
    expect(await json.ex.submit((a: number[]) => a.length, [1, 2, 3])).toBe(3);
    expect(json.fake.submits()[0].tasks[0].args.strategy).toBe(JSON_DATA);
    const refused = await json.ex
      .submit((x: bigint) => x, 1n)
      .result()
      .catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: "SERIALIZATION_FAILED" });
    expect((refused as Error).message).toMatch(/^args\[0\] /);
  });

  it("sends resourceSpecification with each submit, snapshotted", async () => {
    const { ex, fake } = await setup({ resourceSpecification: { num_nodes: 2 } });
    await ex.submit((x: number) => x, 1);
    ex.resourceSpecification = { num_nodes: 4 };
    await ex.submit((x: number) => x, 2);
    expect(fake.submits().map((s) => s.resource_specification)).toEqual([{ num_nodes: 2 }, { num_nodes: 4 }]);
  });

  it("amqpPort replaces the port of the broker URL the service returns", async () => {
    // The service names a port nobody listens on; amqpPort points at the real broker.
    // One task per request: every request's futures learn that the broker is unreachable.
    const broken = await setup({ batchSize: 1 }, { echo: true, amqpUrl: "amqp://guest:guest@127.0.0.1:1" });
    const futures = [1, 2, 3].map((n) => broken.ex.submit((x: number) => x, n));
    for (const future of futures) {
      expect(await future.result().catch((e: unknown) => e)).toMatchObject({ code: "BROKER_UNREACHABLE" });
    }
    expect(broken.fake.submits()).toHaveLength(3);

    const fixed = await setup({ amqpPort: 5672 }, { echo: true, amqpUrl: "amqp://guest:guest@127.0.0.1:1" });
    expect(await fixed.ex.submit((a: number, b: number) => a * b, 6, 7)).toBe(42);
  });

  it("keeps FutureCancelledError as a deprecated name of CancelledError", async () => {
    expect(FutureCancelledError).toBe(CancelledError);
    const { ex } = await setup({}, {});
    const future = ex.submit((x: number) => x, 1);
    await ex.shutdown({ cancelFutures: true });
    const err = await future.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FutureCancelledError);
    expect(err).toMatchObject({ name: "CancelledError", code: "FUTURE_CANCELLED", reason: "shutdown" });
  });
});
