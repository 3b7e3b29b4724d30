import {
  ConduitError,
  deserializeData,
  JSON_DATA,
  SOURCE_CODE,
  STRUCTURED_DATA,
  serializeStructured,
  TaskExecutionFailed,
} from "@conduit/protocol";
import { describe, expect, it } from "vitest";
import { functionSource, normalizeSource } from "../src/function-source.js";
import { decodeOutcome, serializeArguments, serializeFunction } from "../src/serialize.js";

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
    const own = "(x) => { const my__name = (a, b) => a + b; return my__name(x, 1); }";
    expect(normalizeSource(own)).toBe(own);
    // Class blocks tsx adds, and __name statements in any statement position.
    const withClass =
      '(a)=>{class K{static{__name(this,"K")}static make(){return new K}v=21}if(a)function f(){}__name(f,"f");return K.make().v*a}';
    expect(normalizeSource(withClass)).not.toContain("__name");
    expect(revive(normalizeSource(withClass))(2)).toBe(42);
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

describe("free variables, this", () => {
  const refusal = (text: string, name = "") => {
    try {
      normalizeSource(text, name);
    } catch (err) {
      expect((err as ConduitError).code).toBe("FUNCTION_NOT_SERIALIZABLE");
      return (err as Error).message;
    }
    throw new Error(`expected a refusal of ${text}`);
  };

  it("allows Node's standard globals, built-ins, import() and everything declared inside", () => {
    const ok = [
      "async () => { const { join } = await import('node:path'); return join('a', 'b'); }",
      "() => [console, setTimeout, clearTimeout, setImmediate, fetch, Buffer, process, URL, structuredClone]",
      "() => [Math.max(1), JSON, Map, Set, Promise, BigInt(1), new Date(), Intl, globalThis, undefined, NaN]",
      "function f(n) { return n <= 1 ? 1 : n * f(n - 1); }",
      "(a, { b, c: [d = a] }, ...rest) => { var v = 1; let w; const { x } = {}; return [a, b, d, rest, v, w, x, arguments0]; function arguments0() {} }",
      "function g() { return arguments.length; }",
      "(xs) => { for (const x of xs) {} for (let i = 0; i < 1; i++) i; for (const k in xs) k; try {} catch ({ message }) { message; } }",
      "(o) => ({ key: o.key, [o.k]: 1, m() { return this.key; }, get g() { return this; } })",
      "() => { class P { #x = 1; static s = 2; y = this.#x; get x() { return this.#x; } static { this.s; } } return new P(); }",
      "() => { label: for (;;) { break label; } switch (1) { case 1: { let q = 1; q; } const z = 2; z; } }",
      "function () { return new.target; }",
      "(x) => { y = 1; var y; return x + y; }",
      "(p) => { hoisted(); function hoisted() { return p; } }",
    ];
    for (const text of ok) expect(normalizeSource(text)).toBe(text);
  });

  it("refuses a free variable, naming it and advising an argument or BundledCode", () => {
    expect(refusal("(x) => x * factor", "scale")).toBe(
      "Function scale uses factor, which is defined outside it and does not travel with its source; pass factor as an argument, or ship the function with conduit.BundledCode.",
    );
    expect(refusal("() => { helper(); other.run(); { let inner; } return inner; }")).toBe(
      "The function uses helper, other, inner, which are defined outside it and do not travel with its source; pass them as arguments, or ship the function with conduit.BundledCode.",
    );
    // Names a worker does not define although this process may: CommonJS's, and an assignment to an undeclared global.
    expect(refusal("() => require('fs')")).toMatch(/^The function uses require, which/);
    expect(refusal("() => { counter = 1; }")).toMatch(/^The function uses counter, which/);
    expect(refusal("(a = defaults) => a")).toMatch(/^The function uses defaults, which/);
    expect(refusal("() => { for (let i of list) i; }")).toMatch(/^The function uses list, which/);
    expect(refusal("() => { class K extends Base {} }")).toMatch(/^The function uses Base, which/);
    expect(refusal("() => import.meta.url", "where")).toBe(
      "Function where uses import.meta, which describes the submitting module and does not exist on the endpoint; pass the value you need (e.g. import.meta.url) as an argument, or ship the function with conduit.BundledCode.",
    );
    // An object key or a member name is not a variable.
    expect(refusal("() => ({ a: b.c })")).toMatch(/^The function uses b, which/);
  });

  it("refuses `this` at the top, also from an arrow inside, but not inside nested functions and classes", () => {
    const message =
      "Function m uses `this`, which does not travel with its source; pass what `this` refers to as an argument instead.";
    expect(refusal("function m() { return this.x; }", "m")).toBe(message);
    expect(refusal("function m() { return [1].map(() => this); }", "m")).toBe(message);
    expect(refusal("() => this", "m")).toBe(message);
    const o = {
      base: 1,
      m() {
        return this.base;
      },
    };
    expect(() => functionSource(o.m)).toThrow(/^Function m uses `this`/);
    expect(normalizeSource("() => function () { return this; }")).toBe("() => function () { return this; }");
  });
});

describe("arguments and outcomes", () => {
  it("serializes arguments as StructuredData of {args} by default, or JSONData", () => {
    const when = new Date(0);
    const structured = serializeArguments([1, new Map([["k", when]])]);
    expect(structured.strategy).toBe(STRUCTURED_DATA);
    expect(deserializeData(structured)).toEqual({ args: [1, new Map([["k", when]])] });
    expect(serializeArguments([1, "a", { b: null }], JSON_DATA)).toEqual({
      strategy: JSON_DATA,
      data: '{"args":[1,"a",{"b":null}]}',
    });
    expect(() => serializeArguments([{ when }], JSON_DATA)).toThrow(
      "args[0].when is a Date; conduit.JSONData carries plain JSON only: use conduit.StructuredData or convert it.",
    );
    expect(() => serializeArguments([1, { f: () => 1 }])).toThrow(
      /^args\[1\]\.f is a function, which conduit.StructuredData cannot carry/,
    );
  });

  it("decodes a success in either data strategy, a remote error and a pending task", () => {
    expect(decodeOutcome({ taskId: "t", state: "success", result: { strategy: JSON_DATA, data: "42" } })).toBe(42);
    const big = { n: 2n ** 70n, s: new Set([1]) };
    expect(decodeOutcome({ taskId: "t", state: "success", result: serializeStructured(big) })).toEqual(big);
    expect(() =>
      decodeOutcome({ taskId: "t9", state: "success", result: { strategy: "conduit.PickleData", data: "" } }),
    ).toThrow(/^The result of task t9 uses data strategy conduit.PickleData/);
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
