/**
 * One task, followed by its REST request id: the service's JSON log line of
 * the submit (pino's reqId, with the task ids), the MEP's line of the
 * start_uep command and the UEP's line of the task (each `request_id=`, from
 * the messages' correlation-id) are all found by one `grep` for that id.
 * Per-task lines are DEBUG: the service runs with --log-level debug, the MEP and
 * UEP with `debug: true`.
 */
import { execFile } from "node:child_process";
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { Executor } from "@conduit/sdk";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type ChaosStack, ENDPOINT_NAME, startChaosStack } from "../chaos/harness.js";

let stack: ChaosStack | undefined;
beforeAll(async () => {
  stack = await startChaosStack({ serviceArgs: ["--log-level", "debug"], endpointConfig: "debug: true\n" });
}, 120_000);
afterAll(async () => {
  await stack?.dispose();
});

/** Every endpoint.log under `dir`. */
function endpointLogs(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((path) => path.endsWith("endpoint.log"))
    .map((path) => join(dir, path));
}

it("one grep for a submit's request id finds the task in the service's, the MEP's and the UEP's logs", {
  timeout: 90_000,
}, async () => {
  if (!stack) throw new Error("the stack did not start");
  // `debug` is the chaos template's variable for the UEP's own `debug: true`.
  const ex = new Executor({ endpointId: stack.endpointId, userEndpointConfig: { debug: true }, client: stack.client });
  const future = ex.submit((a: number) => a + 1, 41);
  try {
    expect(await future.result()).toBe(42);
  } finally {
    await ex.shutdown({ wait: false, cancelFutures: true });
  }

  // The service logs JSON (pino) to stderr; a deployment sends that to its journal or a file.
  const serviceLog = join(stack.userDir, "service.log");
  writeFileSync(serviceLog, stack.service.output.stderr);
  const submitted = stack.service.output.stderr
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as { msg?: string; reqId?: string; task_ids?: string[] })
    .find((entry) => entry.msg === "tasks submitted" && entry.task_ids?.includes(future.taskId));
  const requestId = submitted?.reqId;
  expect(requestId).toMatch(/^[0-9a-f-]{36}$/);

  const mepLog = join(stack.userDir, ENDPOINT_NAME, "endpoint.log");
  const uepLogs = endpointLogs(stack.userDir).filter((file) => file !== mepLog);
  expect(uepLogs).toHaveLength(1);
  const { stdout } = await promisify(execFile)("grep", ["-l", `${requestId}`, serviceLog, mepLog, uepLogs[0]]);
  expect(stdout.trim().split("\n")).toEqual([serviceLog, mepLog, uepLogs[0]]);
  // The UEP's line names the task too.
  const { stdout: uepLine } = await promisify(execFile)("grep", [`${requestId}`, uepLogs[0]]);
  expect(uepLine).toContain(`Task ${future.taskId} received (request_id=${requestId})`);
});

it("answers every request with its id: a load balancer's X-Request-Id is kept, one unfit for a log line replaced", async () => {
  if (!stack) throw new Error("the stack did not start");
  const idOf = async (given?: string) =>
    (await fetch(`${stack?.service.url}/healthz`, { headers: given ? { "x-request-id": given } : {} })).headers.get(
      "x-request-id",
    );
  expect(await idOf()).toMatch(/^[0-9a-f]{8}-[0-9a-f-]{27}$/);
  expect(await idOf("lb-7f3a.1")).toBe("lb-7f3a.1");
  const replaced = await idOf("two words");
  expect(replaced).toMatch(/^[0-9a-f]{8}-[0-9a-f-]{27}$/);
  expect(await idOf("x".repeat(101))).not.toBe("x".repeat(101));
});
