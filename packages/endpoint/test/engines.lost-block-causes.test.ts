/**
 * A task lost with its block fails with the cause the scheduler named:
 * BlockWalltime, BlockCancelled, WorkerOutOfMemory (never re-run: it would
 * be killed again), else WorkerLost; max_retries_on_system_failure re-runs
 * the others.
 */
import type { WireError } from "@conduit/protocol";
import { describe, expect, it } from "vitest";
import type { EngineResult, EngineTask } from "../src/engine-task.js";
import { TaskLedger } from "../src/engines/task-ledger.js";
import { sourceCode } from "./engines.harness.js";

function task(taskId: string): EngineTask {
  return {
    taskId,
    functionId: "f",
    function: sourceCode("() => 1"),
    args: { strategy: "conduit.JSONData", data: "{}" },
  };
}

function ledger(maxRetries: number): { ledger: TaskLedger; errors: Map<string, WireError> } {
  const errors = new Map<string, WireError>();
  const onResult = (result: EngineResult) => {
    if (!result.ok) errors.set(result.taskId, result.error);
  };
  return { ledger: new TaskLedger(maxRetries, onResult), errors };
}

const REASON = "block 0 (job 12) was lost: its job reached its walltime (00:10:00), while running task t";

describe("a task lost with its block", () => {
  it("fails with the named cause's error", () => {
    const { ledger: l, errors } = ledger(0);
    for (const id of ["w", "c", "m", "x"]) l.add(task(id));
    expect(l.lost(task("w"), REASON, "walltime")).toBe(false);
    expect(l.lost(task("c"), "block 1 was lost: its job was cancelled outside Conduit", "cancelled")).toBe(false);
    expect(
      l.lost(
        task("m"),
        "block 2 was lost: its job was killed by the scheduler for exceeding its memory",
        "out-of-memory",
      ),
    ).toBe(false);
    expect(l.lost(task("x"), "block 3 was lost: its block manager was killed by signal SIGKILL")).toBe(false);
    expect(errors.get("w")).toMatchObject({ code: "BLOCK_WALLTIME", name: "BlockWalltime" });
    expect(errors.get("w")?.message).toBe(
      "Block 0 (job 12) was lost: its job reached its walltime (00:10:00), while running task t; it was not re-run (set max_retries_on_system_failure to re-run tasks whose worker dies).",
    );
    expect(errors.get("c")).toMatchObject({ code: "BLOCK_CANCELLED", name: "BlockCancelled" });
    expect(errors.get("m")).toMatchObject({ code: "WORKER_OUT_OF_MEMORY", name: "WorkerOutOfMemory" });
    expect(errors.get("m")?.message).toMatch(/for exceeding its memory; it was not re-run\.$/);
    expect(errors.get("x")).toMatchObject({ code: "WORKER_LOST", name: "WorkerLost" });
  });

  it("runs again per max_retries_on_system_failure, except after a memory kill", () => {
    const { ledger: l, errors } = ledger(1);
    for (const id of ["w", "m"]) l.add(task(id));
    expect(l.lost(task("w"), REASON, "walltime")).toBe(true);
    expect(l.lost(task("m"), "block 2 was lost", "out-of-memory")).toBe(false);
    expect(errors.get("m")?.code).toBe("WORKER_OUT_OF_MEMORY");
    expect(l.lost(task("w"), REASON, "walltime")).toBe(false);
    expect(errors.get("w")?.message).toMatch(/it ran 2 times and max_retries_on_system_failure is 1/);
  });
});
