/**
 * Cancel end to end: the real service (in process), RabbitMQ, and a real
 * endpoint (MEP and UEP processes) whose only worker is kept busy by a long
 * task. A task queued behind it is cancelled (true): it ends `cancelled` and
 * never runs (its function would write a marker file). The running task is not
 * cancelled (false) and finishes with its result.
 *
 * The same endpoint (a local engine) also shows what a task's
 * resource_specification does there: it is logged with the task (at debug)
 * and its keys are checked, nothing more.
 */
import { randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JSON_DATA, SOURCE_CODE, type SubmitResponse, type TaskStatusResponse } from "@conduit/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  cleanupProcesses,
  cliEnv,
  runCli,
  startMep,
  startTestService,
  type TestService,
  tempUserDir,
} from "./cli.helpers.js";

let service: TestService;
let endpointId: string;
let userDir: string;
const scratch = mkdtempSync(join(tmpdir(), "conduit-cancel-"));

beforeAll(async () => {
  service = await startTestService();
  userDir = tempUserDir();
  const env = cliEnv(userDir, service);
  expect((await runCli(["configure", "cancel"], env)).code).toBe(0);
  // One worker: a long task holds it, and the next task waits in the UEP.
  writeFileSync(
    join(userDir, "cancel", "user_config_template.yaml.j2"),
    "engine:\n  type: ThreadPoolEngine\n  max_workers: 1\nidle_heartbeats_soft: 0\ndebug: true\n",
  );
  endpointId = (await startMep("cancel", env)).endpointId;
});

afterAll(async () => {
  await cleanupProcesses();
  await service?.close();
});

async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${service.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${service.token}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${text}`);
  return JSON.parse(text) as T;
}

/** Writes `marker`, then waits until `release` exists (when given), and returns "done". */
const markAndWait = `async (marker, release) => {
  const fs = await import("node:fs");
  fs.writeFileSync(marker, "ran");
  while (release && !fs.existsSync(release)) await new Promise((r) => setTimeout(r, 20));
  return "done";
}`;

function call(functionId: string, marker: string, release: string | null) {
  return {
    task_id: randomUUID(),
    function_id: functionId,
    args: { strategy: JSON_DATA, data: JSON.stringify({ args: [marker, release] }) },
  };
}

async function state(taskId: string): Promise<TaskStatusResponse> {
  return api<TaskStatusResponse>("GET", `/v1/tasks/${taskId}`);
}

describe("cancel, end to end", () => {
  it("cancels a task queued behind a running one (never runs); the running one is not cancelled and finishes", async () => {
    const { function_id: functionId } = await api<{ function_id: string }>("POST", "/v1/functions", {
      function: { strategy: SOURCE_CODE, data: markAndWait },
    });
    const long = { marker: join(scratch, "long.ran"), release: join(scratch, "long.release") };
    const queuedMarker = join(scratch, "queued.ran");
    const longTask = call(functionId, long.marker, long.release);
    const queuedTask = call(functionId, queuedMarker, null);
    const submitted = await api<SubmitResponse>("POST", `/v1/endpoints/${endpointId}/submit`, {
      tasks: [longTask, queuedTask],
    });

    // The long task holds the only worker; the other is received by the UEP but not started.
    await expect.poll(() => existsSync(long.marker), { timeout: 30_000, interval: 50 }).toBe(true);
    await expect.poll(async () => (await state(longTask.task_id)).state, { timeout: 10_000 }).toBe("running");
    expect((await state(queuedTask.task_id)).state).toBe("waiting-for-endpoint");

    expect(await api("POST", `/v1/tasks/${queuedTask.task_id}/cancel`)).toEqual({
      task_id: queuedTask.task_id,
      cancelled: true,
      state: "cancelled",
    });
    expect(await api("POST", `/v1/tasks/${longTask.task_id}/cancel`)).toEqual({
      task_id: longTask.task_id,
      cancelled: false,
      state: "running",
    });

    writeFileSync(long.release, "");
    await expect.poll(async () => (await state(longTask.task_id)).state, { timeout: 30_000 }).toBe("success");
    expect((await state(longTask.task_id)).result).toEqual({ strategy: expect.any(String), data: expect.any(String) });

    // The worker is free now: a task submitted after it runs, and the cancelled one (before it in the
    // same queue) would have run first had the UEP not dropped it.
    const afterMarker = join(scratch, "after.ran");
    const afterTask = call(functionId, afterMarker, null);
    await api<SubmitResponse>("POST", `/v1/endpoints/${endpointId}/submit`, {
      tasks: [afterTask],
      task_group_id: submitted.task_group_id,
    });
    await expect.poll(async () => (await state(afterTask.task_id)).state, { timeout: 30_000 }).toBe("success");
    expect(existsSync(afterMarker)).toBe(true);

    expect(existsSync(queuedMarker)).toBe(false);
    expect(await state(queuedTask.task_id)).toMatchObject({
      state: "cancelled",
      error: {
        code: "TASK_CANCELLED",
        name: "CancelledError",
        message: `Task ${queuedTask.task_id} was cancelled before it started.`,
      },
    });
  });
});

/** Every endpoint.log under the user dir (the MEP's and its UEPs'), concatenated. */
function endpointLogs(dir: string): string {
  let text = "";
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && entry.name === "endpoint.log")
      text += readFileSync(join(entry.parentPath, entry.name), "utf8");
  }
  return text;
}

describe("resource_specification on a local engine", () => {
  it("is logged with the task and runs it when its keys are valid; another key fails the task naming it", async () => {
    const { function_id: functionId } = await api<{ function_id: string }>("POST", "/v1/functions", {
      function: { strategy: SOURCE_CODE, data: markAndWait },
    });
    const spec = { num_nodes: 1, ranks_per_node: 2, num_ranks: 2, launcher_options: "--bind-to core" };
    const good = call(functionId, join(scratch, "spec-good.ran"), null);
    await api("POST", `/v1/endpoints/${endpointId}/submit`, { tasks: [good], resource_specification: spec });
    await expect.poll(async () => (await state(good.task_id)).state, { timeout: 30_000 }).toBe("success");
    // Log lines are JSON: the message's quotes come escaped.
    expect(endpointLogs(userDir)).toContain(
      JSON.stringify(`Task ${good.task_id} resource_specification: ${JSON.stringify(spec)}`).slice(1, -1),
    );

    const badMarker = join(scratch, "spec-bad.ran");
    const bad = call(functionId, badMarker, null);
    await api("POST", `/v1/endpoints/${endpointId}/submit`, {
      tasks: [bad],
      resource_specification: { num_ranks: 2, walltime: 60 },
    });
    await expect.poll(async () => (await state(bad.task_id)).state, { timeout: 30_000 }).toBe("failed");
    expect((await state(bad.task_id)).error).toMatchObject({
      code: "INVALID_RESOURCE_SPECIFICATION",
      name: "InvalidResourceSpecification",
      message: `Task ${bad.task_id} has resource_specification key 'walltime', which this endpoint's engine does not accept; use only: num_nodes, ranks_per_node, num_ranks, launcher_options.`,
    });
    expect(existsSync(badMarker)).toBe(false);
  });
});
