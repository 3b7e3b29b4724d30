/**
 * One task, followed by its REST request id: the service's JSON log line of
 * the submit (pino's reqId, with the task ids), the MEP's line of the
 * start_uep command, the UEP's line of the task, the block manager's line
 * handing it to a worker and the worker's line starting it (each `reqId`
 * too, from the messages' correlation-id, carried with the task through the
 * interchange) are all found by one `grep` for that id, each one JSON object
 * in pino's shape naming the id in the same field, `reqId`.
 * Per-task lines are DEBUG: the service runs with --log-level debug, the MEP and
 * UEP with `debug: true` (which the UEP hands on to its blocks and workers).
 */
import { execFile } from "node:child_process";
import { readdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { Executor } from "@conduit/sdk";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createPostgresDatabase, type Throwaway } from "../../packages/service/test/helpers/databases.js";
import { type ChaosStack, ENDPOINT_NAME, startChaosStack } from "../chaos/harness.js";

let stack: ChaosStack | undefined;
let database: Throwaway<string> | undefined;
beforeAll(async () => {
  // Postgres: quicker to start than a new PGlite store on a busy machine.
  database = await createPostgresDatabase();
  stack = await startChaosStack({
    serviceArgs: ["--log-level", "debug", "--database-url", database.value],
    endpointConfig: "debug: true\n",
  });
}, 120_000);
afterAll(async () => {
  await stack?.dispose();
  await database?.dispose();
});

/** Every endpoint.log under `dir`. */
function endpointLogs(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((path) => path.endsWith("endpoint.log"))
    .map((path) => join(dir, path));
}

/** One JSON log line: pino's shape, the service's and the endpoint's alike. */
interface LogEntry {
  level: number;
  time: number;
  pid: number;
  name?: string;
  msg: string;
  reqId?: string;
  task_id?: string;
  task_ids?: string[];
}

it("one grep for a submit's request id finds the task in the service's, the MEP's, the UEP's, the block's and the worker's logs", {
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
    .map((line) => JSON.parse(line) as LogEntry)
    .find((entry) => entry.msg === "tasks submitted" && entry.task_ids?.includes(future.taskId));
  const requestId = submitted?.reqId;
  expect(requestId).toMatch(/^[0-9a-f-]{36}$/);

  const mepLog = join(stack.userDir, ENDPOINT_NAME, "endpoint.log");
  const uepLogs = endpointLogs(stack.userDir).filter((file) => file !== mepLog);
  expect(uepLogs).toHaveLength(1);
  // The block's stderr (its manager's and its workers' lines) is kept beside the UEP's log.
  const blockLogs = readdirSync(join(dirname(uepLogs[0]), "submit_scripts"))
    .filter((name) => name.endsWith(".stderr"))
    .map((name) => join(dirname(uepLogs[0]), "submit_scripts", name));
  expect(blockLogs).toHaveLength(1);
  const files = [serviceLog, mepLog, uepLogs[0], blockLogs[0]];
  // One grep, every line that names the request id, each with the file it is in.
  const { stdout } = await promisify(execFile)("grep", ["-H", "-F", `${requestId}`, ...files]);
  const found = stdout
    .trim()
    .split("\n")
    .map((hit) => {
      const file = files.find((f) => hit.startsWith(`${f}:`)) as string;
      return { file, entry: JSON.parse(hit.slice(file.length + 1)) as LogEntry };
    });
  expect(new Set(found.map((f) => f.file))).toEqual(new Set(files));
  for (const { entry } of found) {
    // One field name across the service and the endpoint: an operator joins the logs on `reqId`.
    expect(entry).toMatchObject({
      level: expect.any(Number),
      time: expect.any(Number),
      msg: expect.any(String),
      reqId: requestId,
    });
  }
  const inFile = (file: string) => found.filter((f) => f.file === file).map((f) => f.entry);
  // The service names the tasks of the request; the MEP the UEP it starts for it (a start_uep names no task).
  expect(inFile(serviceLog).some((e) => e.reqId === requestId && e.task_ids?.includes(future.taskId))).toBe(true);
  expect(inFile(mepLog).some((e) => e.name === "MEP" && e.reqId === requestId && /start_uep/.test(e.msg))).toBe(true);
  const withTask = (file: string, name: RegExp) =>
    inFile(file).some(
      (e) => name.test(e.name ?? "") && e.level === 20 && e.task_id === future.taskId && e.reqId === requestId,
    );
  expect(withTask(uepLogs[0], /^UEP uep\./)).toBe(true);
  expect(withTask(blockLogs[0], /^block /)).toBe(true);
  expect(withTask(blockLogs[0], /^worker /)).toBe(true);
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
