/**
 * A task lost with its block fails with the cause the scheduler named:
 * BlockWalltime, BlockCancelled, WorkerOutOfMemory (never re-run: it would
 * be killed again), else WorkerLost; max_retries_on_system_failure re-runs
 * the others. A walltime re-runs a task once without using a retry; a
 * second fails it naming the walltime.
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
    expect(l.lost(task("w"), REASON, "walltime")).toBe(true);
    expect(errors.has("w")).toBe(false);
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
      "Block 0 (job 12) was lost: its job reached its walltime (00:10:00), while running task t; the task was cut by a block's walltime 2 times and is not re-run again (raise the provider's walltime, or split the task into shorter ones).",
    );
    expect(errors.get("c")).toMatchObject({ code: "BLOCK_CANCELLED", name: "BlockCancelled" });
    expect(errors.get("m")).toMatchObject({ code: "WORKER_OUT_OF_MEMORY", name: "WorkerOutOfMemory" });
    expect(errors.get("m")?.message).toMatch(/for exceeding its memory; it was not re-run\.$/);
    expect(errors.get("x")).toMatchObject({ code: "WORKER_LOST", name: "WorkerLost" });
  });

  it("runs again per max_retries_on_system_failure, except after a memory kill", () => {
    const { ledger: l, errors } = ledger(1);
    for (const id of ["c", "m"]) l.add(task(id));
    expect(l.lost(task("c"), "block 1 was lost", "cancelled")).toBe(true);
    expect(l.lost(task("m"), "block 2 was lost", "out-of-memory")).toBe(false);
    expect(errors.get("m")?.code).toBe("WORKER_OUT_OF_MEMORY");
    expect(l.lost(task("c"), "block 1 was lost", "cancelled")).toBe(false);
    expect(errors.get("c")?.message).toMatch(/it ran 2 times and max_retries_on_system_failure is 1/);
  });

  it("re-runs a task cut by a walltime once without using a retry, and fails the second time whatever the retries", () => {
    const { ledger: l, errors } = ledger(1);
    l.add(task("w"));
    // A walltime, then a lost node (the one retry), then a walltime again: the second walltime ends it.
    expect(l.lost(task("w"), REASON, "walltime")).toBe(true);
    expect(l.lost(task("w"), "block 1 was lost: its block manager was killed by signal SIGKILL")).toBe(true);
    expect(l.lost(task("w"), REASON, "walltime")).toBe(false);
    expect(errors.get("w")).toMatchObject({ code: "BLOCK_WALLTIME", name: "BlockWalltime" });
    expect(errors.get("w")?.message).toMatch(/reached its walltime \(00:10:00\).*cut by a block's walltime 2 times/);

    const { ledger: many, errors: manyErrors } = ledger(5);
    many.add(task("w"));
    expect(many.lost(task("w"), REASON, "walltime")).toBe(true);
    expect(many.lost(task("w"), REASON, "walltime")).toBe(false);
    expect(manyErrors.get("w")?.code).toBe("BLOCK_WALLTIME");
  });

  it("uses the retries on other causes even after a walltime", () => {
    const { ledger: l, errors } = ledger(0);
    l.add(task("w"));
    expect(l.lost(task("w"), REASON, "walltime")).toBe(true);
    expect(l.lost(task("w"), "block 1 was lost: its block manager was killed by signal SIGKILL")).toBe(false);
    expect(errors.get("w")).toMatchObject({ code: "WORKER_LOST" });
  });
});
