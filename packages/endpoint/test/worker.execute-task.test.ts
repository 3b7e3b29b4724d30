import { describe, expect, it } from "vitest";
import type { EngineTask } from "../src/engine-task.js";
import { executeTask } from "../src/worker/execute-task.js";
import { jsonArgs, resultValue, sourceCode } from "./engines.harness.js";

let n = 0;
function task(source: string, args: unknown[] = [], kwargs?: Record<string, unknown>, functionId?: string): EngineTask {
  n++;
  return {
    taskId: `t${n}`,
    functionId: functionId ?? `f${n}`,
    function: sourceCode(source),
    args: jsonArgs(args, kwargs),
  };
}

describe("executeTask", () => {
  it("runs arrow functions, function declarations and async functions", async () => {
    expect(resultValue(await executeTask(task("(a, b) => a + b", [1, 2])))).toBe(3);
    expect(resultValue(await executeTask(task("function add(a, b) { return a + b; }", [2, 3])))).toBe(5);
    expect(resultValue(await executeTask(task("async function f(x) { await null; return x * 2; }", [21])))).toBe(42);
    expect(resultValue(await executeTask(task("async (x) => [x]", ["a"])))).toEqual(["a"]);
    expect(resultValue(await executeTask(task("(x) => x // a trailing comment", [7])))).toBe(7);
  });

  it("passes non-empty kwargs as a final argument, and only then", async () => {
    expect(resultValue(await executeTask(task("(...all) => all", [1], { k: 2 })))).toEqual([1, { k: 2 }]);
    expect(resultValue(await executeTask(task("(...all) => all", [1], {})))).toEqual([1]);
  });

  it("returns null for a function that returns nothing", async () => {
    expect(resultValue(await executeTask(task("() => {}")))).toBeNull();
  });

  // `await import()` is proven in real workers (engines.*.test.ts): vitest's module runner has no loader for eval'd code.
  it("reaches Node's modules through getBuiltinModule", async () => {
    expect(resultValue(await executeTask(task('() => typeof process.getBuiltinModule("node:fs").existsSync')))).toBe(
      "function",
    );
  });

  it("sets CONDUIT_TASK_ID during the task and restores it after", async () => {
    const t = task("async () => { await null; return process.env.CONDUIT_TASK_ID; }");
    expect(resultValue(await executeTask(t))).toBe(t.taskId);
    expect(process.env.CONDUIT_TASK_ID).toBeUndefined();
  });

  it("returns a thrown error with its name, message and the user's stack", async () => {
    const result = await executeTask(task("function boom() { null.x; }"));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe("TASK_EXCEPTION");
    expect(result.error.name).toBe("TypeError");
    expect(result.error.message).toContain("Cannot read properties of null");
    expect(result.error.stack).toMatch(/at boom \(conduit-function-f\d+\.js:1:/);
    expect(result.error.stack).not.toContain("executeTask");
  });

  it("returns rejected promises and thrown non-errors as failures", async () => {
    const rejected = await executeTask(task('async () => { throw new RangeError("too far"); }'));
    expect(rejected).toMatchObject({ ok: false, error: { name: "RangeError", message: "too far" } });
    const thrown = await executeTask(task('() => { throw "plain text"; }'));
    expect(thrown).toMatchObject({ ok: false, error: { name: "Error", message: "plain text" } });
  });

  it("compiles a function once per function id", async () => {
    const counter = "(() => { let calls = 0; return () => ++calls; })()";
    expect(resultValue(await executeTask(task(counter, [], undefined, "counter")))).toBe(1);
    expect(resultValue(await executeTask(task(counter, [], undefined, "counter")))).toBe(2);
    expect(resultValue(await executeTask(task(counter, [], undefined, "other-counter")))).toBe(1);
  });

  it("fails clearly when the source is not a function or does not compile", async () => {
    const notFunction = await executeTask(task("42"));
    expect(notFunction).toMatchObject({ ok: false, error: { code: "FUNCTION_INVALID" } });
    if (!notFunction.ok) expect(notFunction.error.message).toMatch(/evaluates to a number, not a function/);
    const syntax = await executeTask(task("(a, b) =>"));
    expect(syntax).toMatchObject({ ok: false, error: { code: "FUNCTION_INVALID" } });
    if (!syntax.ok) expect(syntax.error.message).toMatch(/does not compile \(SyntaxError/);
  });

  it("names an unknown strategy and the known ones", async () => {
    const code = await executeTask({ ...task("() => 1"), function: { strategy: "conduit.DillCode", data: "x" } });
    expect(code).toMatchObject({ ok: false, error: { code: "DESERIALIZATION_FAILED" } });
    if (!code.ok)
      expect(code.error.message).toBe(
        "Code strategy conduit.DillCode is not known here; known: conduit.SourceCode, conduit.BundledCode, conduit.ShellCode.",
      );
    const data = await executeTask({ ...task("() => 1"), args: { strategy: "conduit.PickleData", data: "x" } });
    expect(data).toMatchObject({ ok: false, error: { code: "DESERIALIZATION_FAILED" } });
    if (!data.ok) expect(data.error.message).toContain("conduit.PickleData");
    if (!data.ok) expect(data.error.message).toContain("conduit.JSONData");
  });

  it("rejects arguments that are not {args, kwargs}", async () => {
    const result = await executeTask({ ...task("() => 1"), args: { strategy: "conduit.JSONData", data: "[1,2]" } });
    expect(result).toMatchObject({ ok: false, error: { code: "DESERIALIZATION_FAILED" } });
  });

  it("fails clearly when the result cannot be serialized", async () => {
    for (const source of ["() => 10n", "() => { const a = {}; a.self = a; return a; }", "() => () => 1"]) {
      const result = await executeTask(task(source));
      expect(result).toMatchObject({ ok: false, error: { code: "SERIALIZATION_FAILED" } });
      if (!result.ok) expect(result.error.message).toMatch(/cannot be serialized with conduit.JSONData/);
    }
  });
});
