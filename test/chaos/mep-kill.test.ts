/**
 * A MEP killed with SIGKILL while its UEP still has tasks queued: the next
 * `start` (systemd's Restart=always) must start that UEP again by itself, from
 * the command it kept in ueps.json, since no new submit will announce the
 * waiting tasks. Before the fix those tasks waited forever.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type ChaosStack, ENDPOINT_NAME, formatReports, mepKill, runFault, startChaosStack } from "./harness.js";

let stack: ChaosStack;
beforeAll(async () => {
  stack = await startChaosStack();
});
afterAll(async () => {
  await stack?.dispose();
});

it("a MEP killed with tasks still queued: the restarted endpoint runs them all, none lost or twice", {
  timeout: 60_000,
}, async () => {
  const report = await runFault(stack, mepKill(), { tasks: 150, faultAfter: 20, timeoutMs: 40_000 });
  console.log(formatReports([report]));
  expect(report.lost, formatReports([report])).toBe(0);
  expect(report.twice).toBe(0);
  expect(report.failedWithoutCause).toBe(0);
  expect(report.mismatched).toBe(0);
  expect(report.missed).toBeUndefined();
  // Nothing was submitted after the kill: the new MEP started the UEP from what the dead one recorded.
  const log = readFileSync(join(stack.userDir, ENDPOINT_NAME, "endpoint.log"), "utf8");
  expect(log).toMatch(/was left with \d+ message\(s\) in its queue by the previous instance; starting it again/);
});
