/**
 * `metrics_port` in the MEP's config.yaml: Prometheus text on
 * 127.0.0.1:<port>/metrics, scraped with no UEP, and while a task holds one of
 * the HighThroughputEngine's 4 workers (one block); other paths are a 404.
 */

import { existsSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { Executor } from "@conduit/sdk";
import { afterAll, beforeAll, expect, it } from "vitest";
import { freePort, waitFor } from "../../scripts/local-stack.mjs";
import { type ChaosStack, startChaosStack } from "../chaos/harness.js";

let stack: ChaosStack | undefined;
let port = 0;
beforeAll(async () => {
  port = await freePort();
  stack = await startChaosStack({ endpointConfig: `metrics_port: ${port}\n` });
}, 120_000);
afterAll(async () => {
  await stack?.dispose();
});

async function scrape(): Promise<Record<string, number>> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  const values: Record<string, number> = {};
  for (const line of (await response.text()).split("\n")) {
    const match = /^(conduit_mep_\w+) (\S+)$/.exec(line);
    if (match) values[match[1]] = Number(match[2]);
  }
  return values;
}

/** Waits for a file to appear, then returns: a task that holds its worker until the test lets go. */
const holdUntil = async (path: string) => {
  const fs = await import("node:fs");
  while (!fs.existsSync(path)) await new Promise((resolve) => setTimeout(resolve, 50));
  return "released";
};

it("scrapes UEPs, workers, blocks and running tasks from the MEP's metrics_port", { timeout: 90_000 }, async () => {
  if (!stack) throw new Error("the stack did not start");
  expect(await scrape()).toEqual({
    conduit_mep_ueps: 0,
    conduit_mep_workers: 0,
    conduit_mep_idle_workers: 0,
    conduit_mep_blocks: 0,
    conduit_mep_tasks_running: 0,
    conduit_mep_tasks_pending: 0,
  });
  expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(404);

  const release = join(stack.userDir, "release");
  const ex = new Executor({ endpointId: stack.endpointId, userEndpointConfig: {}, client: stack.client });
  try {
    const future = ex.submit(holdUntil, release);
    let seen: Record<string, number> = {};
    await waitFor(
      "the MEP's metrics showing the task on a worker",
      async () => {
        seen = await scrape();
        return seen.conduit_mep_tasks_running === 1;
      },
      60_000,
    );
    // The block starts min(max_workers_per_node, CPUs ÷ cores_per_worker) workers; the task holds one.
    const workers = Math.min(4, availableParallelism());
    expect(seen).toMatchObject({ conduit_mep_ueps: 1, conduit_mep_workers: workers, conduit_mep_blocks: 1 });
    expect(seen.conduit_mep_idle_workers).toBe(workers - 1);
    expect(existsSync(release)).toBe(false);
    writeFileSync(release, "");
    expect(await future.result()).toBe("released");
  } finally {
    await ex.shutdown({ wait: false, cancelFutures: true });
  }
});
