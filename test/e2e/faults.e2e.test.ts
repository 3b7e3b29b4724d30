/**
 * Nothing is lost when a process dies: a UEP killed mid-task, tasks submitted
 * while the endpoint is stopped, a MEP killed with SIGKILL.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runEndpointCli, startEndpoint, waitFor } from "../../scripts/local-stack.mjs";
import { type E2eStack, pidsMatching, withStack } from "./helpers.js";

let stack: E2eStack;
const restarted: Array<Awaited<ReturnType<typeof startEndpoint>>> = [];
beforeAll(async () => {
  stack = await withStack({ endpointName: "sturdy" });
});
afterAll(async () => {
  for (const r of restarted) await r.stop();
  await stack?.dispose();
});

const add = (a: number, b: number) => a + b;
const slow = async (ms: number) => {
  await new Promise((resolve) => setTimeout(resolve, ms));
  return ms;
};

function uepPids(): number[] {
  // The UEP retitles itself (process.title), which is what /proc/<pid>/cmdline shows.
  return pidsMatching(`conduit UEP uep.${stack.endpointId}.`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("faults", () => {
  it("a UEP killed in the middle of a task: the task is re-run or failed with a reason, never lost", async () => {
    const ex = stack.executor({ case: "uep-kill" });
    expect(await ex.submit(add, 1, 1).result()).toBe(2);
    const [uep] = uepPids();
    expect(uep).toBeDefined();
    const pending = ex.submit(slow, 3000).result();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    process.kill(uep, "SIGKILL");
    const outcome = await pending.then(
      (value) => ({ value }),
      (err: Error) => ({ error: err.message }),
    );
    if ("value" in outcome) expect(outcome.value).toBe(3000);
    else expect(outcome.error.length).toBeGreaterThan(10);
  });

  it("a task submitted while the endpoint is stopped runs when it starts again", async () => {
    const stopped = await runEndpointCli(["stop", "sturdy"], stack.env);
    expect(stopped.code).toBe(0);
    const ex = stack.executor({ case: "offline" });
    const future = ex.submit(add, 20, 22).result();
    const again = await startEndpoint({ env: stack.env, name: "sturdy" });
    restarted.push(again);
    expect(again.endpointId).toBe(stack.endpointId);
    expect(await future).toBe(42);
  });

  it("a MEP killed with SIGKILL: its UEPs exit, list says Disconnected, the next start runs tasks", async () => {
    const ex = stack.executor({ case: "mep-kill" });
    expect(await ex.submit(add, 2, 2).result()).toBe(4);
    const mep = restarted[restarted.length - 1];
    const ueps = uepPids();
    expect(ueps.length).toBeGreaterThan(0);
    mep.child.kill("SIGKILL");
    await waitFor("the UEPs to exit", () => ueps.every((pid) => !alive(pid)), 10_000);
    const { stdout } = await runEndpointCli(["list"], stack.env);
    expect(stdout).toMatch(/Disconnected\s+\|\s+sturdy/);
    const again = await startEndpoint({ env: stack.env, name: "sturdy" });
    restarted.push(again);
    expect(await ex.submit(add, 3, 4).result()).toBe(7);
  });
});
