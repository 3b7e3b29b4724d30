/**
 * The Executor's submit throughput by `batchSize` (issue 10): tasks per second
 * the service accepted, from the first submit until the responses to the
 * submit requests named every task (a Client that counts them). The results
 * are awaited after the clock stops, so the runs do not overlap. One stack
 * (service on PGlite, endpoint, a vhost of its own) serves every batch size.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLocalStack } from "../scripts/local-stack.mjs";

export const BATCH_SIZES = [1, 16, 128, 512];

async function acceptedPerSecond(endpointId, batchSize, tasks) {
  const { Client, Executor } = await import("@conduit/sdk");
  let accepted = 0;
  let allAccepted;
  const acceptedAt = new Promise((resolve) => {
    allAccepted = resolve;
  });
  class CountingClient extends Client {
    async submit(id, request) {
      const response = await super.submit(id, request);
      accepted += response.task_ids.length;
      if (accepted === tasks) allAccepted(process.hrtime.bigint());
      return response;
    }
  }
  const ex = new Executor({
    endpointId,
    batchSize,
    client: new CountingClient(),
    userEndpointConfig: { worker_init: "" },
  });
  const noop = () => null;
  try {
    // Registers the function and opens the result stream outside the measurement.
    await ex.submit(noop);
    accepted = 0;
    const t0 = process.hrtime.bigint();
    const futures = [];
    for (let i = 0; i < tasks; i++) futures.push(ex.submit(noop));
    const t1 = await acceptedAt;
    await Promise.all(futures);
    return tasks / (Number(t1 - t0) / 1e9);
  } finally {
    await ex.shutdown();
  }
}

/** Resolves to `{ [batchSize]: tasks/s }` for `tasks` no-op tasks submitted at once. */
export async function submitThroughput({ tasks, log }) {
  const userDir = mkdtempSync(join(tmpdir(), "conduit-bench-submit-"));
  const previous = process.env.CONDUIT_USER_DIR;
  process.env.CONDUIT_USER_DIR = userDir;
  const stack = await startLocalStack({ userDir, endpointName: "bench-submit", isolated: true, log });
  const rates = {};
  try {
    for (const batchSize of BATCH_SIZES) {
      log(`batchSize ${batchSize} ...`);
      rates[batchSize] = await acceptedPerSecond(stack.endpointId, batchSize, tasks);
    }
  } finally {
    await stack.stop();
    if (previous === undefined) delete process.env.CONDUIT_USER_DIR;
    else process.env.CONDUIT_USER_DIR = previous;
    rmSync(userDir, { recursive: true, force: true });
  }
  return rates;
}
