/**
 * The short chaos run inside `npm test`: 200 tasks of 100 ms on a
 * HighThroughputEngine with 4 workers, one fault struck after the first 30
 * results. No task may be lost or reported twice, and every failure names its
 * cause. Times are printed, never asserted. `npm run chaos` is the full run.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type ChaosStack,
  type Fault,
  type FaultReport,
  formatReports,
  proxyReset,
  runFault,
  startChaosStack,
  uepKill,
  workerKill,
} from "./harness.js";

let stack: ChaosStack;
const reports: FaultReport[] = [];
beforeAll(async () => {
  stack = await startChaosStack();
});
afterAll(async () => {
  if (reports.length > 0) console.log(formatReports(reports));
  await stack?.dispose();
});

async function check(fault: Fault): Promise<FaultReport> {
  const report = await runFault(stack, fault, { tasks: 200, faultAfter: 30, timeoutMs: 40_000 });
  reports.push(report);
  expect(report.lost, formatReports([report])).toBe(0);
  expect(report.twice, formatReports([report])).toBe(0);
  expect(report.failedWithoutCause, formatReports([report])).toBe(0);
  expect(report.mismatched, formatReports([report])).toBe(0);
  expect(report.succeeded + report.failed).toBe(200);
  expect(report.missed).toBeUndefined();
  return report;
}

describe("chaos (short)", () => {
  it("a worker killed with SIGKILL: every task ends once, the one it ran fails naming the lost worker", {
    timeout: 60_000,
  }, async () => {
    // No retries: the killed worker's task must fail, and say why.
    const report = await check(workerKill({ retries: 0 }));
    expect(report.failed).toBeGreaterThanOrEqual(1);
    for (const cause of Object.keys(report.causes)) expect(cause).toMatch(/lost|died|killed|SIGKILL/i);
  });
  it(
    "the UEP killed with SIGKILL: every task ends once, re-run on the next UEP or failed with a cause",
    {
      timeout: 60_000,
    },
    () => check(uepKill()),
  );
  it("the endpoint's broker connection reset: every task ends once", { timeout: 60_000 }, () => check(proxyReset()));
});
