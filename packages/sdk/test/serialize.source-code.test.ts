import { ConduitError, JSON_DATA, SOURCE_CODE, TaskExecutionFailed } from "@conduit/protocol";
import { describe, expect, it } from "vitest";
import {
  decodeOutcome,
  functionSource,
  normalizeSource,
  serializeArguments,
  serializeFunction,
} from "../src/serialize.js";

/** Evaluates shipped source the way a worker does: as an expression, with nothing else in scope. */
function revive(source: string): (...args: unknown[]) => unknown {
  return new Function(`return (${source}\n);`)() as (...args: unknown[]) => unknown;
}

describe("functionSource", () => {
  it("ships arrow, async arrow, declarations, expressions and generators as written", async () => {
    const arrow = (a: number, b: number) => a + b;
    const asyncArrow = async (a: number) => a * 2;
    function declared(a: number, b: number) {
      return a - b;
    }
    async function asyncDeclared(a: number) {
      return a + 0.5;
    }
    const expression = function named(x: string) {
      return x.toUpperCase();
    };
    function* counter(n: number) {
      for (let i = 0; i < n; i++) yield i;
    }

    expect(revive(functionSource(arrow))(30, 12)).toBe(42);
    expect(await revive(functionSource(asyncArrow))(21)).toBe(42);
    expect(revive(functionSource(declared))(50, 8)).toBe(42);
    expect(functionSource(asyncDeclared)).toMatch(/^async function asyncDeclared\(/);
    expect(await revive(functionSource(asyncDeclared))(41.5)).toBe(42);
    expect(revive(functionSource(expression))("ok")).toBe("OK");
    expect([...(revive(functionSource(counter))(3) as Iterable<number>)]).toEqual([0, 1, 2]);
  });

  it("rewrites method shorthand to a function expression", async () => {
    const o = {
      add(a: number, b: number) {
        return a + b;
      },
      async mul(a: number, b: number) {
        return a * b;
      },
      *pair() {
        yield 1;
        yield 2;
      },
      ["kebab-name"](a: number) {
        return a + 1;
      },
      delete(a: number) {
        return -a;
      },
    };
    expect(functionSource(o.add)).toMatch(/^function add\(a, b\) \{/);
    expect(revive(functionSource(o.add))(30, 12)).toBe(42);
    expect(functionSource(o.mul)).toMatch(/^async function mul\(/);
    expect(await revive(functionSource(o.mul))(6, 7)).toBe(42);
    expect(functionSource(o.pair)).toMatch(/^function\* pair\(/);
    expect(revive(functionSource(o["kebab-name"]))(41)).toBe(42);
    // `function delete() {}` is not valid JavaScript: the method becomes anonymous.
    expect(functionSource(o.delete)).toMatch(/^function \(a\)/);
    expect(revive(functionSource(o.delete))(-42)).toBe(42);
  });

  it("removes the __name helpers tsx and esbuild insert (statements and wrappers)", () => {
    const pretty = [
      "function outer(x) {",
      "  function inner(y) { return y + 1; }",
      '  __name(inner, "inner");',
      '  const twice = /* @__PURE__ */ __name((z) => z * 2, "twice");',
      '  const nested = __name(function (w) { return __name((v) => v, "id")(w); }, "nested");',
      "  return nested(twice(inner(x)));",
      "}",
    ].join("\n");
    const minified =
      'a=>{function inner(b){return b+1}__name(inner,"inner");const g=__name(c=>c*2,"g");return g(inner(a))}';
    for (const text of [pretty, minified]) {
      const source = normalizeSource(text);
      expect(source).not.toContain("__name");
      expect(revive(source)(20)).toBe(42);
    }
    // A user's own function that happens to be called __name-something is left alone.
    expect(normalizeSource("(x) => my__name(x, 1)")).toBe("(x) => my__name(x, 1)");
  });

  it("refuses classes, bound and native functions with one sentence", () => {
    class Counter {}
    const add = (a: number, b: number) => a + b;
    const refusal = (fn: unknown) => {
      try {
        functionSource(fn as () => void);
      } catch (err) {
        expect(err).toBeInstanceOf(ConduitError);
        expect((err as ConduitError).code).toBe("FUNCTION_NOT_SERIALIZABLE");
        return (err as Error).message;
      }
      throw new Error("expected a refusal");
    };
    expect(refusal(Counter)).toBe(
      "Counter is a class, which cannot be submitted; submit a function that defines and uses the class inside its body.",
    );
    expect(refusal(add.bind(null, 1))).toBe(
      "Function add is bound, so its source is not available; submit the unbound function and pass the bound values as arguments.",
    );
    expect(refusal(Math.max)).toBe(
      "Function max is native code, so its source is not available; submit a function that calls it, e.g. (x) => Math.sqrt(x).",
    );
    expect(refusal("add")).toBe("Expected a function, got string; pass a function or an arrow function.");
  });

  it("wraps the source in a conduit.SourceCode payload", () => {
    expect(serializeFunction((x: number) => x)).toEqual({ strategy: SOURCE_CODE, data: "(x) => x" });
  });
});

describe("arguments and outcomes", () => {
  it("serializes arguments as JSONData of {args, kwargs}", () => {
    expect(serializeArguments([1, "a", { b: null }])).toEqual({
      strategy: JSON_DATA,
      data: '{"args":[1,"a",{"b":null}]}',
    });
    expect(JSON.parse(serializeArguments([1], { k: 2 }).data)).toEqual({ args: [1], kwargs: { k: 2 } });
    expect(() => serializeArguments([10n])).toThrow(
      /^The arguments cannot be serialized as JSON \(.*BigInt.*\); pass plain data/,
    );
  });

  it("decodes a success, a remote error and a pending task", () => {
    expect(decodeOutcome({ taskId: "t", state: "success", result: { strategy: JSON_DATA, data: "42" } })).toBe(42);
    const remote = {
      code: "TASK_EXCEPTION",
      name: "TypeError",
      message: "x is not a function",
      stack: "TypeError: x…",
    };
    let thrown: unknown;
    try {
      decodeOutcome({ taskId: "t", state: "failed", error: remote });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(TaskExecutionFailed);
    expect(thrown).toMatchObject({ name: "TypeError", message: "x is not a function", stack: "TypeError: x…" });
    expect(() => decodeOutcome({ taskId: "t1", state: "running" })).toThrow(
      "Task t1 is running, not finished; ask again later, or submit through an Executor to have the result pushed.",
    );
  });
});
