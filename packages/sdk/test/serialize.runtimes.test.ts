/**
 * SourceCode as each runtime prints functions: plain `node` (a child process
 * running an .mjs), `tsx` (a child process running an .mts, where esbuild's
 * keepNames adds `__name`), and vitest (this file, where vite rewrites
 * `import()` and `import.meta`). The SDK under test is the built one
 * (packages/sdk/dist), as a user's program loads it.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { functionSource } from "../src/function-source.js";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "../../..");
const SDK = pathToFileURL(join(ROOT, "packages/sdk/dist/index.js")).href;
const TSX = join(ROOT, "node_modules/.bin/tsx");

/** Functions every runtime ships; the same text runs as .mjs under node and as .mts under tsx. */
const FIXTURE = `
import { functionSource } from ${JSON.stringify(SDK)};
import { basename } from "node:path";

const factor = 3;
const out = {};
const ship = (name, fn) => {
  try {
    out[name] = { source: functionSource(fn) };
  } catch (err) {
    out[name] = { error: err.message };
  }
};

export async function nested(x) {
  function inner(y) {
    return y + 1;
  }
  const twice = (z) => z * 2;
  const named = function named(w) {
    return w;
  };
  class Box {
    static of(v) {
      return new Box(v);
    }
    constructor(v) {
      this.v = v;
    }
  }
  const { join } = await import("node:path");
  return [Box.of(named(twice(inner(x)))).v, join("a", "b")];
}
ship("nested", nested);
ship("arrow", async (n) => {
  const sq = (k) => k * k;
  return sq(n);
});
ship("method", {
  async sum(a, b) {
    const add = (p, q) => p + q;
    return add(a, b);
  },
}.sum);
ship("generator", function* gen(n) {
  for (let i = 0; i < n; i++) yield i;
});
ship("freeVariable", (x) => x * factor);
ship("importedBinding", (p) => basename(p));
ship("usesThis", function () {
  return this.x;
});
ship("bound", nested.bind(null));
ship("klass", class Point {});
out.raw = { source: nested.toString() };
console.log(JSON.stringify(out));
`;

interface Shipped {
  source?: string;
  error?: string;
}

/** Evaluates shipped source the way the worker does: indirect eval, global scope only. */
function revive(source: string): (...args: unknown[]) => unknown {
  // biome-ignore lint/security/noGlobalEval: reproducing the worker's evaluation.
  const globalEval: (code: string) => unknown = globalThis.eval;
  return globalEval(`(${source}\n)`) as (...args: unknown[]) => unknown;
}

/**
 * Runs shipped source in a fresh `node` as the worker does (indirect eval in an
 * ES module, so `import()` works), returning the JSON of its awaited result.
 */
async function runLikeWorker(source: string, args: unknown[]): Promise<unknown> {
  const script =
    'const f = (0, eval)("(" + process.env.SOURCE + "\\n)"); console.log(JSON.stringify(await f(...JSON.parse(process.env.ARGS))));';
  const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script], {
    env: { ...process.env, SOURCE: source, ARGS: JSON.stringify(args) },
    timeout: 20_000,
  });
  return JSON.parse(stdout);
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "conduit-serialize-"));
  await writeFile(join(dir, "fixture.mjs"), FIXTURE);
  await writeFile(join(dir, "fixture.mts"), FIXTURE);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const runtimes: Array<{ name: string; command: () => [string, string[]] }> = [
  { name: "node", command: () => [process.execPath, [join(dir, "fixture.mjs")]] },
  { name: "tsx", command: () => [TSX, [join(dir, "fixture.mts")]] },
];

describe.each(runtimes)("SourceCode under $name", ({ name, command }) => {
  let shipped: Record<string, Shipped>;
  beforeAll(async () => {
    const [file, args] = command();
    const { stdout } = await run(file, args, { cwd: dir, timeout: 30_000 });
    shipped = JSON.parse(stdout) as Record<string, Shipped>;
  }, 40_000);

  it("ships nested functions, arrows, classes and import() that run on a worker", async () => {
    // What this test is about: tsx did add its helpers (and node did not), and they are gone.
    expect(shipped.raw.source!.includes("__name")).toBe(name === "tsx");
    for (const key of ["nested", "arrow", "method", "generator"]) {
      expect(shipped[key].error, key).toBeUndefined();
      expect(shipped[key].source, key).not.toMatch(/__name|__vite_ssr/);
    }
    expect(await runLikeWorker(shipped.nested.source!, [20])).toEqual([42, join("a", "b")]);
    expect(await revive(shipped.arrow.source!)(7)).toBe(49);
    expect(shipped.method.source).toMatch(/^async function sum\(/);
    expect(await revive(shipped.method.source!)(40, 2)).toBe(42);
    expect([...(revive(shipped.generator.source!)(3) as Iterable<number>)]).toEqual([0, 1, 2]);
  });

  it("refuses free variables, imported bindings, this, bound functions and classes", () => {
    expect(shipped.freeVariable.error).toBe(
      "The function uses factor, which is defined outside it and does not travel with its source; pass factor as an argument, or ship the function with conduit.BundledCode.",
    );
    expect(shipped.importedBinding.error).toMatch(/^The function uses basename, which is defined outside it/);
    expect(shipped.usesThis.error).toMatch(/uses `this`, which does not travel with its source/);
    expect(shipped.bound.error).toBe(
      "Function nested is bound, so its source is not available; submit the unbound function and pass the bound values as arguments.",
    );
    expect(shipped.klass.error).toMatch(/^Point is a class, which cannot be submitted/);
  });
});

describe("SourceCode under vitest", () => {
  it("turns vite's __vite_ssr_dynamic_import__ back into import(), and names import.meta in its refusal", async () => {
    const withImport = async (a: string) => {
      const path = await import("node:path");
      return path.join(a, "b");
    };
    // What this test is about: vitest did rewrite the function.
    expect(withImport.toString()).toContain("__vite_ssr_dynamic_import__");
    const source = functionSource(withImport);
    expect(source).toContain('import("node:path")');
    expect(source).not.toContain("__vite_ssr");
    expect(await runLikeWorker(source, ["a"])).toBe(join("a", "b"));

    // import.meta is named as such (not as vite's variable) in the refusal: it does not exist on a worker.
    const withMeta = () => import.meta.url;
    expect(withMeta.toString()).toContain("__vite_ssr_import_meta__");
    expect(() => functionSource(withMeta)).toThrow(
      /^Function withMeta uses import.meta, which describes the submitting module/,
    );
  });

  it("names an imported binding that vite rewrote, not vite's variable", () => {
    expect(() => functionSource((p: string) => join(p, "x"))).toThrow(
      /^The function uses join, which is defined outside it/,
    );
  });
});
