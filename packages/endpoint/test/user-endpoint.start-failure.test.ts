import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { UEP_EXIT } from "../src/user-endpoint/bootstrap-types.js";
import { type StartOptions, THREAD_POOL_TEMPLATE, UepHarness } from "./user-endpoint.harness.js";

const WAIT = { timeout: 20_000, interval: 50 };

const SCHEMA = JSON.stringify({
  $schema: "https://json-schema.org/draft/2020-12/schema",
  type: "object",
  properties: { worker_init: { type: "string" } },
  additionalProperties: false,
});

const cases: Array<{ name: string; start: StartOptions; reason: RegExp }> = [
  {
    name: "a template that does not render",
    start: { template: "engine:\n  type: {{ engine_type\n" },
    reason: /template|syntax|unexpected/i,
  },
  {
    name: "a variable the schema rejects",
    start: { template: THREAD_POOL_TEMPLATE, schema: SCHEMA, userConfig: { worker_init: 42 } },
    reason: /worker_init/,
  },
  {
    name: "an unknown engine type",
    start: { template: "engine:\n  type: WarpDriveEngine\n" },
    reason: /WarpDriveEngine.*ThreadPoolEngine|ThreadPoolEngine.*WarpDriveEngine/,
  },
  {
    name: "an engine option this version of Conduit does not implement",
    start: { template: "engine:\n  type: GlobusComputeEngine\n  label: htex\n" },
    reason:
      /^The rendered user_config_template\.yaml\.j2: this version of Conduit does not implement `engine\.label` \(a name for the engine in logs\); remove it\.$/,
  },
  {
    name: "an unknown top-level key",
    start: { template: `${THREAD_POOL_TEMPLATE}\nidle_heartbeat_hard: 5\n` },
    reason: /`idle_heartbeat_hard` is not a valid user endpoint config key \(did you mean `idle_heartbeats_hard`\?\)/,
  },
  {
    name: "rendered YAML that is not a config",
    start: { template: "engine: [\n" },
    reason: /YAML|engine/i,
  },
  {
    name: "a failing endpoint_setup",
    start: { template: `endpoint_setup: "echo cannot load module >&2; exit 5"\n${THREAD_POOL_TEMPLATE}` },
    reason: /endpoint_setup exited with code 5 \(stderr: "cannot load module"\)/,
  },
  {
    name: "a worker limit above the endpoint's hard limit",
    start: {
      template: "engine:\n  type: ProcessPoolEngine\n  max_workers: 1\n  max_open_files_per_worker: 2000000000\n",
    },
    reason:
      /^engine\.max_open_files_per_worker is 2000000000, above this endpoint's hard limit of \d+ open files \(ulimit -Hn\); lower it, or raise the hard limit of the endpoint manager\.$/,
  },
  {
    name: "a High-Assurance endpoint's UEP given an engine that is not HA-compliant",
    start: {
      template: "engine:\n  type: HighThroughputEngine\n  encrypted: false\n",
      parentConfig: { high_assurance: true },
    },
    reason: /^Engine configuration is not High Assurance compliant\. {2}Endpoint will not start\.$/,
  },
  {
    name: "a template the endpoint manager could not read",
    start: {
      template: { error: "The endpoint cannot read its user config template /x (EACCES); ask the administrator." },
    },
    reason: /cannot read its user config template \/x \(EACCES\)/,
  },
];

describe("user endpoint process: start failures", () => {
  let h: UepHarness;
  beforeEach(async () => {
    h = await new UepHarness().open();
  });
  afterEach(async () => {
    await h.close();
  });

  for (const { name, start, reason } of cases) {
    it(`fails every queued task with the reason and exits ${UEP_EXIT.startFailed}: ${name}`, async () => {
      const tasks = [h.task(), h.task()];
      await h.publish(...tasks);
      const uep = h.start(start);
      expect((await uep.exit).code).toBe(UEP_EXIT.startFailed);

      for (const task of tasks) {
        await expect.poll(() => h.resultOf(task.taskId), WAIT).toBeDefined();
        const result = h.resultOf(task.taskId);
        expect(result).toMatchObject({ state: "failed", error: { code: "UEP_START_FAILED", name: "UepStartError" } });
        expect(result!.error!.message).toMatch(reason);
      }
      await expect
        .poll(() => h.heartbeats.find((b) => b.error), WAIT)
        .toMatchObject({
          role: "uep",
          uepId: h.uepId,
          error: { code: "UEP_START_FAILED" },
        });
      expect(h.heartbeats.find((b) => b.error)!.error!.message).toMatch(reason);
      expect(await h.queueDepth()).toBe(0);
      expect(h.log()).toContain("User endpoint could not start:");
    });
  }
});

describe("user endpoint process: start failures against a service that deletes the UEP's account", () => {
  // The service deletes a UEP's broker account when its last heartbeat reports a start failure. A UEP that
  // sent that heartbeat before draining its queue lost its connection mid-drain in about 1 start failure of 6,
  // and the task it had not failed yet was never failed. 50 in a row must all settle.
  const REPEATS = 50;
  const PARALLEL = 5;
  const template = "engine:\n  type: {{ engine_type\n";

  async function once(): Promise<void> {
    const h = await new UepHarness().open({ ownAccount: true });
    try {
      const tasks = [h.task(), h.task()];
      await h.publish(...tasks);
      const uep = h.start({ template });
      expect((await uep.exit).code).toBe(UEP_EXIT.startFailed);
      for (const task of tasks) {
        await expect.poll(() => h.resultOf(task.taskId), WAIT).toBeDefined();
        expect(h.resultOf(task.taskId)).toMatchObject({ state: "failed", error: { code: "UEP_START_FAILED" } });
        expect(h.resultOf(task.taskId)!.error!.message).toMatch(/template|syntax|unexpected/i);
      }
      // The heartbeat came, so the account was deleted: it came after the tasks were failed.
      await expect.poll(() => h.heartbeats.some((b) => b.error), WAIT).toBe(true);
      expect(await h.queueDepth()).toBe(0);
    } finally {
      await h.close();
    }
  }

  it(`fails every queued task in ${REPEATS} start failures in a row, the last heartbeat after the drain`, async () => {
    for (let done = 0; done < REPEATS; done += PARALLEL) {
      await Promise.all(Array.from({ length: PARALLEL }, once));
    }
  }, 300_000);
});

describe("user endpoint process of a High-Assurance endpoint", () => {
  let h: UepHarness;
  beforeEach(async () => {
    h = await new UepHarness().open();
  });
  afterEach(async () => {
    await h.close();
  });

  it("logs why a HighThroughputEngine with encrypted: false is not compliant", async () => {
    const uep = h.start({
      template: "engine:\n  type: HighThroughputEngine\n  encrypted: false\n",
      parentConfig: { high_assurance: true },
    });
    expect((await uep.exit).code).toBe(UEP_EXIT.startFailed);
    expect(h.log()).toContain(
      "Engine configuration is not High Assurance compliant: High-Assurance HighThroughputEngines must keep the `encrypted` configuration value true",
    );
  });

  it("runs tasks on a thread pool (HA-compliant), where the HighThroughputEngine above fails to start", async () => {
    const task = h.task();
    await h.publish(task);
    const uep = h.start({ template: THREAD_POOL_TEMPLATE, parentConfig: { high_assurance: true } });
    await expect.poll(() => h.resultOf(task.taskId), WAIT).toBeDefined();
    expect(h.resultOf(task.taskId)).toMatchObject({ state: "success" });
    uep.child.kill("SIGTERM");
    expect((await uep.exit).code).toBe(UEP_EXIT.ok);
  });
});
