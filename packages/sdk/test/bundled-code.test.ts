import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { BUNDLED_CODE, type BundledCodeData, ConduitError } from "@conduit/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BundledCode } from "../src/bundled-code.js";

let root: string;

function write(relative: string, text: string): string {
  const path = join(root, relative);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
  return path;
}

function dataOf(bundled: BundledCode): BundledCodeData {
  return JSON.parse(bundled.payload.data) as BundledCodeData;
}

/** Runs the bundle's export in a fresh `node` (where its externals do not exist, so only self-contained bundles). */
function runInNode(bundled: BundledCode, args: unknown[]): unknown {
  const data = dataOf(bundled);
  const dir = mkdtempSync(join(tmpdir(), "conduit-bundle-run-"));
  try {
    const file = join(dir, "bundle.mjs");
    writeFileSync(file, data.code);
    const script = `const m = await import(${JSON.stringify(pathToFileURL(file).href)});
process.stdout.write(JSON.stringify(await m[${JSON.stringify(data.export)}](...${JSON.stringify(args)})));`;
    return JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function thrown(fn: () => unknown): ConduitError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConduitError);
    return err as ConduitError;
  }
  throw new Error("expected a ConduitError, and nothing was thrown");
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "conduit-bundled-sdk-"));
  write(
    "tasks.ts",
    `import { scale } from "./helper.js";
import { pad } from "pure-pkg";
import { cjsDouble } from "cjs-pkg";
export const FACTOR: number = 3;
export function process(n: number): string { return pad(scale(n, FACTOR)); }
export async function doubled(n: number): Promise<number> { await new Promise((r) => setTimeout(r, 1)); return cjsDouble(n); }
export default function modern(o: { v?: number }) { o.v ??= 7; return o.v; }
`,
  );
  write("helper.ts", "export const scale = (n: number, by: number): number => n * by;\n");
  write("node_modules/pure-pkg/package.json", JSON.stringify({ name: "pure-pkg", type: "module", main: "index.js" }));
  write("node_modules/pure-pkg/index.js", 'export const pad = (n) => "<" + String(n).padStart(4, "0") + ">";\n');
  write("node_modules/cjs-pkg/package.json", JSON.stringify({ name: "cjs-pkg", main: "index.js" }));
  write("node_modules/cjs-pkg/index.js", "exports.cjsDouble = (n) => n * 2;\n");

  // Packages with native addons: one with binding.gyp, a scoped one with a prebuilt .node file, one by gypfile.
  write(
    "native.ts",
    `import gyp from "gyp-addon";
import { hello } from "@scope/prebuilt";
import flagged from "flagged-addon";
import { pad } from "pure-pkg";
export function useNative(): string { return pad(1) + gyp + hello + flagged; }
`,
  );
  write("node_modules/gyp-addon/package.json", JSON.stringify({ name: "gyp-addon", main: "index.js" }));
  write("node_modules/gyp-addon/binding.gyp", "{}\n");
  write("node_modules/gyp-addon/index.js", 'module.exports = require("./build/Release/addon.node");\n');
  write("node_modules/gyp-addon/build/Release/addon.node", "not really an addon");
  write("node_modules/@scope/prebuilt/package.json", JSON.stringify({ name: "@scope/prebuilt", main: "lib/index.js" }));
  // Found only through a variable path, as `node-gyp-build` does: esbuild cannot see it, the file scan does.
  write(
    "node_modules/@scope/prebuilt/lib/index.js",
    'const p = "../prebuilds/linux-x64/" + "prebuilt.node";\nmodule.exports = require(p);\n',
  );
  write("node_modules/@scope/prebuilt/prebuilds/linux-x64/prebuilt.node", "not really an addon");
  write("node_modules/flagged-addon/package.json", JSON.stringify({ name: "flagged-addon", gypfile: true }));
  write("node_modules/flagged-addon/index.js", "module.exports = 1;\n");

  write(
    "broken.ts",
    'import { scale } from "./helper.js";\nexport const ok = 1;\nexport const bad = scale(1, );;; )\n',
  );
  write("unresolved.ts", 'import missing from "not-installed-anywhere";\nexport const f = () => missing;\n');
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

describe("BundledCode.from bundles a module's export with its imports", () => {
  it("ships the export with its relative and npm imports in a conduit.BundledCode payload", () => {
    const bundled = BundledCode.from(pathToFileURL(join(root, "tasks.ts")), "process");
    expect(bundled.payload.strategy).toBe(BUNDLED_CODE);
    expect(bundled.name).toBe("process");
    const data = dataOf(bundled);
    expect(Object.keys(data).sort()).toEqual(["code", "export", "externals", "hash", "v"]);
    expect(data).toMatchObject({ v: 1, export: "process", externals: [] });
    expect(data.hash).toBe(createHash("sha256").update(data.code).digest("hex"));
    expect(bundled.hash).toBe(data.hash);
    // The imports are inside the bundle, not imported from it.
    expect(data.code).not.toMatch(/from\s+["'](\.\/helper|pure-pkg|cjs-pkg)/);
    expect(runInNode(bundled, [4])).toBe("<0012>");
  });

  it("bundles CommonJS dependencies and async exports so they run under plain node", () => {
    const bundled = BundledCode.from(join(root, "tasks.ts"), "doubled");
    expect(runInNode(bundled, [21])).toBe(42);
  });

  it("accepts a URL, a file: URL string and a path to the same module, and gives the same hash", () => {
    const path = join(root, "tasks.ts");
    const a = BundledCode.from(pathToFileURL(path), "default");
    const b = BundledCode.from(pathToFileURL(path).href, "default");
    const c = BundledCode.from(path, "default");
    expect(new Set([a.hash, b.hash, c.hash]).size).toBe(1);
    expect(runInNode(a, [{}])).toBe(7);
    // Only the export name differs between two exports of one module: the worker loads the module once.
    expect(BundledCode.from(path, "process").hash).toBe(a.hash);
  });

  it("targets the running Node, so modern syntax is not lowered", () => {
    const code = dataOf(BundledCode.from(join(root, "tasks.ts"), "default")).code;
    expect(code).toContain("??=");
  });

  it("keeps packages with native addons external and lists them", () => {
    const bundled = BundledCode.from(join(root, "native.ts"), "useNative");
    const data = dataOf(bundled);
    expect(data.externals).toEqual(["@scope/prebuilt", "flagged-addon", "gyp-addon"]);
    expect(data.code).toMatch(/from\s+"gyp-addon"/);
    expect(data.code).toMatch(/from\s+"@scope\/prebuilt"/);
    expect(data.code).not.toContain("addon.node");
    expect(data.code).not.toContain("prebuilt.node");
    // A pure package next to them is still bundled.
    expect(data.code).not.toMatch(/from\s+"pure-pkg"/);
    expect(data.code).toContain("padStart");
  });

  it("leaves out packages named in the external option", () => {
    const data = dataOf(BundledCode.from(join(root, "tasks.ts"), "process", { external: ["pure-pkg"] }));
    expect(data.externals).toEqual(["pure-pkg"]);
    expect(data.code).toMatch(/from\s+"pure-pkg"/);
    expect(data.code).not.toContain("padStart");
  });
});

describe("BundledCode.from refuses with one sentence", () => {
  it("names a module that does not exist", () => {
    const missing = join(root, "nope.ts");
    const err = thrown(() => BundledCode.from(missing, "f"));
    expect(err.code).toBe("BUNDLE_MODULE_NOT_FOUND");
    expect(err.message).toBe(
      `Module ${missing} not found; pass the URL or path of an existing module, e.g. new URL("./tasks.ts", import.meta.url).`,
    );
  });

  it("names a missing export and lists the module's exports", () => {
    const path = join(root, "tasks.ts");
    const err = thrown(() => BundledCode.from(path, "proces"));
    expect(err.code).toBe("BUNDLE_EXPORT_MISSING");
    expect(err.message).toBe(
      `Module ${path} has no export named "proces"; its exports are: FACTOR, default, doubled, process.`,
    );
  });

  it("reports esbuild's first error with its file and line", () => {
    const err = thrown(() => BundledCode.from(join(root, "broken.ts"), "ok"));
    expect(err.code).toBe("BUNDLE_FAILED");
    expect(err.message).toMatch(
      new RegExp(
        `^Bundling ${join(root, "broken.ts")} failed at ${join(root, "broken.ts")}:3:\\d+: .+; fix that error and bundle again\\.$`,
      ),
    );
  });

  it("says how to fix an import that does not resolve", () => {
    const err = thrown(() => BundledCode.from(join(root, "unresolved.ts"), "f"));
    expect(err.message).toContain(`${join(root, "unresolved.ts")}:1:`);
    expect(err.message).toContain('Could not resolve "not-installed-anywhere"');
    expect(err.message).toMatch(/install that package, or pass it in the external option/);
  });

  it("resolves it on the endpoint instead when it is named external", () => {
    const data = dataOf(BundledCode.from(join(root, "unresolved.ts"), "f", { external: ["not-installed-anywhere"] }));
    expect(data.externals).toEqual(["not-installed-anywhere"]);
  });
});
