import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { deserializeData } from "@conduit/protocol";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createEngine } from "../src/engines/registry.js";
import { type UepChild, UepHarness } from "./user-endpoint.harness.js";

const WAIT = { timeout: 30_000, interval: 50 };

const ENGINES = {
  ThreadPoolEngine: "  type: ThreadPoolEngine\n  max_workers: 1\n",
  ProcessPoolEngine: "  type: ProcessPoolEngine\n  max_workers: 1\n",
  HighThroughputEngine: "  type: HighThroughputEngine\n  max_workers_per_node: 1\n",
};

describe("engine.modules_dir", () => {
  let h: UepHarness;
  beforeEach(async () => {
    h = await new UepHarness().open();
  });
  afterEach(async () => {
    await h.close();
  });

  /** Waits for the task's success; on a timeout the UEP's output and log say why. */
  async function succeeded(taskId: string, uep: UepChild): Promise<void> {
    try {
      await expect.poll(() => h.resultOf(taskId)?.state, WAIT).toBe("success");
    } catch (err) {
      throw new Error(`${(err as Error).message}\nUEP output:\n${uep.output()}\nUEP log:\n${h.log()}`);
    }
  }

  for (const [type, engine] of Object.entries(ENGINES)) {
    it(`reaches the ${type}'s workers as CONDUIT_MODULES_DIR`, async () => {
      const modulesDir = join(h.userDir, "shared modules");
      mkdirSync(modulesDir);
      const uep = h.start({
        template: `engine:\n${engine}  modules_dir: ${JSON.stringify(modulesDir)}\nheartbeat_period: 1\n`,
      });
      const task = h.task({ source: "() => process.env.CONDUIT_MODULES_DIR", args: [] });
      await h.publish(task);
      await succeeded(task.taskId, uep);
      expect(deserializeData(h.resultOf(task.taskId)!.result!)).toBe(modulesDir);
      uep.child.kill("SIGTERM");
      await uep.exit;
    });
  }

  it("is absent by default, so workers use $CONDUIT_USER_DIR/modules", async () => {
    const uep = h.start({ template: `engine:\n${ENGINES.ThreadPoolEngine}heartbeat_period: 1\n` });
    const task = h.task({ source: "() => process.env.CONDUIT_MODULES_DIR ?? null", args: [] });
    await h.publish(task);
    await succeeded(task.taskId, uep);
    expect(deserializeData(h.resultOf(task.taskId)!.result!)).toBeNull();
    uep.child.kill("SIGTERM");
    await uep.exit;
  });

  it("must be a string, on every engine", () => {
    for (const type of Object.keys(ENGINES)) {
      expect(() => createEngine({ type, modules_dir: 5 })).toThrow("engine.modules_dir must be a string (got 5).");
      expect(() => createEngine({ type, modules_dir: "/opt/conduit/modules" })).not.toThrow();
    }
  });
});
