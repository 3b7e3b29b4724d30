import { hostname } from "node:os";
import type { SubmitRequest } from "@conduit/protocol";
import { describe, expect, it } from "vitest";
import { Executor } from "../src/executor.js";
import { SDK_VERSION } from "../src/user-runtime.js";
import { type FakeService, startFakeExecutor } from "./helpers.js";

const setup = (userEndpointConfig?: Record<string, unknown>) =>
  startFakeExecutor({ userEndpointConfig }, { echo: true });

/** The request that carried each task. */
function requestOf(fake: FakeService, taskId: string): SubmitRequest {
  const found = fake.submits().find((s) => s.tasks.some((t) => t.task_id === taskId));
  if (!found) throw new Error(`task ${taskId} was not sent`);
  return found;
}

describe("Executor userEndpointConfig snapshots", () => {
  it("sends each submit with the config as it was at submit time, changed in place or replaced", async () => {
    const { ex, fake } = await setup({ worker_init: "" });
    const add = (a: number, b: number) => a + b;
    const a = ex.submit(add, 30, 12);
    ex.userEndpointConfig.worker_init = "true"; // in place, in the same tick
    const b = ex.submit(add, 21, 21);
    ex.userEndpointConfig = { worker_init: "source venv2/bin/activate" }; // replaced
    const c = ex.submit(add, 40, 2);
    const d = ex.submit(add, 1, 41);

    expect(await Promise.all([a, b, c, d])).toEqual([42, 42, 42, 42]);
    expect(requestOf(fake, a.taskId).user_endpoint_config).toEqual({ worker_init: "" });
    expect(requestOf(fake, b.taskId).user_endpoint_config).toEqual({ worker_init: "true" });
    expect(requestOf(fake, c.taskId).user_endpoint_config).toEqual({ worker_init: "source venv2/bin/activate" });
    // Different snapshots never share a request; equal ones do.
    expect(fake.submits()).toHaveLength(3);
    expect(requestOf(fake, d.taskId)).toBe(requestOf(fake, c.taskId));
  });

  it("copies nested values, so a later change deep inside does not reach tasks already submitted", async () => {
    const { ex, fake } = await setup({ env: { STAGE: "one" }, modules: ["gcc"] });
    const id = (x: number) => x;
    const first = ex.submit(id, 1);
    (ex.userEndpointConfig.env as Record<string, string>).STAGE = "two";
    (ex.userEndpointConfig.modules as string[]).push("mpi");
    ex.resourceSpecification = { num_nodes: 2 };
    const second = ex.submit(id, 2);
    ex.resourceSpecification.num_nodes = 4;
    const third = ex.submit(id, 3);

    expect(await Promise.all([first, second, third])).toEqual([1, 2, 3]);
    expect(requestOf(fake, first.taskId)).toMatchObject({
      user_endpoint_config: { env: { STAGE: "one" }, modules: ["gcc"] },
    });
    expect(requestOf(fake, first.taskId).resource_specification).toBeUndefined();
    expect(requestOf(fake, second.taskId)).toMatchObject({
      user_endpoint_config: { env: { STAGE: "two" }, modules: ["gcc", "mpi"] },
      resource_specification: { num_nodes: 2 },
    });
    expect(requestOf(fake, third.taskId).resource_specification).toEqual({ num_nodes: 4 });
  });

  it("sends no config when there is none, and always the submitting runtime", async () => {
    const { ex, fake } = await setup();
    expect(await ex.submit((x: string) => `${x}!`, "hi")).toBe("hi!");
    const [request] = fake.submits();
    expect(request.user_endpoint_config).toBeUndefined();
    expect(request.user_runtime).toEqual({
      node_version: process.versions.node,
      sdk_version: SDK_VERSION,
      platform: process.platform,
      arch: process.arch,
      hostname: hostname(),
    });
  });

  it("rejects a submit whose config is not JSON, and refuses a config that is not an object", async () => {
    const { ex } = await setup();
    ex.userEndpointConfig = { big: 1n };
    await expect(ex.submit((x: number) => x, 1).result()).rejects.toThrow(
      /^userEndpointConfig or resourceSpecification cannot be serialized as JSON \(.*BigInt.*\); use plain data\.$/,
    );
    expect(
      () =>
        new Executor({
          endpointId: "e",
          userEndpointConfig: [] as unknown as Record<string, unknown>,
          client: ex.client,
        }),
    ).toThrow(
      'userEndpointConfig must be an object of named values, e.g. { worker_init: "source venv/bin/activate" }.',
    );
  });
});
