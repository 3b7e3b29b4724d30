import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { ConduitError, encodeBundledCode } from "@conduit/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BundledCode } from "../../sdk/src/bundled-code.js";
import { loadBundledFunction, withModulesDir, workerModulesDir } from "../src/worker/bundled-code.js";

let root: string;
/** A modules directory as an admin prepares it: `npm install` there fills its node_modules. */
let modulesDir: string;
/** A modules directory with nothing installed. */
let emptyModulesDir: string;

function write(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}

function installFakePackage(dir: string, name: string, files: Record<string, string>): void {
  for (const [file, text] of Object.entries(files)) write(join(dir, "node_modules", name, file), text);
}

/** A bundle whose top level counts its runs in a global, so a test can see how often it ran. */
function countingBundle(counter: string, extra = ""): string {
  return encodeBundledCode(
    `globalThis[${JSON.stringify(counter)}] = (globalThis[${JSON.stringify(counter)}] ?? 0) + 1;
export function add(a, b) { return a + b; }
export async function later(x) { await new Promise((r) => setTimeout(r, 5)); return { x, runs: globalThis[${JSON.stringify(counter)}] }; }
export const notAFunction = 42;
${extra}`,
    "add",
    [],
  );
}

function withExport(data: string, name: string): string {
  return JSON.stringify({ ...JSON.parse(data), export: name });
}

function runs(counter: string): unknown {
  return (globalThis as Record<string, unknown>)[counter];
}

async function rejection(promise: Promise<unknown>): Promise<ConduitError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConduitError);
  return err as ConduitError;
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "conduit-bundled-worker-"));
  modulesDir = join(root, "modules");
  emptyModulesDir = join(root, "empty-modules");
  mkdirSync(emptyModulesDir);
  installFakePackage(modulesDir, "fake-esm", {
    "package.json": JSON.stringify({ name: "fake-esm", type: "module", exports: "./index.js" }),
    "index.js": 'export const greet = (who) => "hello, " + who;\nexport const where = import.meta.url;\n',
  });
  installFakePackage(modulesDir, "@fake/cjs-native", {
    "package.json": JSON.stringify({ name: "@fake/cjs-native", main: "index.js" }),
    "binding.gyp": "{}\n",
    "index.js": "exports.triple = (n) => n * 3;\n",
  });

  // A project on the submitting side: the native package is installed there too (with its binding.gyp), so
  // BundledCode.from keeps it external, and a CommonJS dependency requires it.
  const project = join(root, "project");
  installFakePackage(project, "@fake/cjs-native", {
    "package.json": JSON.stringify({ name: "@fake/cjs-native", main: "index.js" }),
    "binding.gyp": "{}\n",
    "index.js": "exports.triple = () => { throw new Error('the submitter\\'s copy must not be bundled'); };\n",
  });
  installFakePackage(project, "wrapper", {
    "package.json": JSON.stringify({ name: "wrapper", main: "index.js" }),
    "index.js": 'const native = require("@fake/cjs-native");\nexports.tripleAll = (xs) => xs.map(native.triple);\n',
  });
  write(
    join(project, "tasks.ts"),
    `import { tripleAll } from "wrapper";
import { greet } from "fake-esm";
const loadedAt: number = Date.now();
export async function run(xs: number[]): Promise<{ tripled: number[]; greeting: string; loadedAt: number }> {
  return { tripled: tripleAll(xs), greeting: greet("worker"), loadedAt };
}
`,
  );
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

describe("loadBundledFunction", () => {
  it("runs a module's top level once per worker, however many calls and exports use it", async () => {
    const counter = `bundled-once-${Date.now()}`;
    const data = countingBundle(counter);
    const [a, b, c] = await Promise.all([1, 2, 3].map(() => loadBundledFunction(data, { modulesDir })));
    expect(await a(1, 2)).toBe(3);
    expect(await b(2, 3)).toBe(5);
    expect(await c(3, 4)).toBe(7);
    const later = await loadBundledFunction(withExport(data, "later"), { modulesDir });
    expect(await later("x")).toEqual({ x: "x", runs: 1 });
    expect(runs(counter)).toBe(1);
    // Different code is a different module, with its own top level.
    const other = `${counter}-other`;
    await loadBundledFunction(countingBundle(other, "// another bundle"), { modulesDir });
    expect(runs(other)).toBe(1);
    expect(runs(counter)).toBe(1);
  });

  it("runs the top level once in each worker process, and keeps the bundles in a private directory", () => {
    const counter = "bundled-child";
    const data = countingBundle(counter);
    const workerModule = pathToFileURL(join(import.meta.dirname, "../dist/worker/bundled-code.js")).href;
    const script = `
import { statSync, readdirSync } from "node:fs";
import { dirname } from "node:path";
const { loadBundledFunction } = await import(${JSON.stringify(workerModule)});
const data = process.env.BUNDLE;
const results = [];
for (let i = 0; i < 3; i++) results.push(await (await loadBundledFunction(data, { modulesDir: process.env.MODULES })) (i, 10));
const dir = readdirSync(process.env.TMPDIR).filter((d) => d.startsWith("conduit-bundles-" + process.pid + "-"));
const mode = (statSync(process.env.TMPDIR + "/" + dir[0]).mode & 0o777).toString(8);
process.stdout.write(JSON.stringify({ results, runs: globalThis[${JSON.stringify(counter)}], dirs: dir.length, mode }));
`;
    const tmp = join(root, "child-tmp");
    mkdirSync(tmp, { recursive: true });
    const run = () =>
      JSON.parse(
        execFileSync(process.execPath, ["--input-type=module", "-e", script], {
          encoding: "utf8",
          env: { ...process.env, BUNDLE: data, MODULES: modulesDir, TMPDIR: tmp },
        }),
      );
    expect(run()).toEqual({ results: [10, 11, 12], runs: 1, dirs: 1, mode: "700" });
    expect(run()).toMatchObject({ runs: 1 });
    // Each process removes its directory when it exits.
    expect(readdirSync(tmp)).toEqual([]);

    // A worker thread ended by terminate() leaves its directory: the next worker removes those of dead processes.
    const deadPid = spawnSync(process.execPath, ["-e", "0"]).pid;
    mkdirSync(join(tmp, `conduit-bundles-${deadPid}-orphan`, "0"), { recursive: true });
    mkdirSync(join(tmp, `conduit-bundles-${process.pid}-alive`));
    expect(run()).toMatchObject({ runs: 1 });
    expect(readdirSync(tmp)).toEqual([`conduit-bundles-${process.pid}-alive`]);
  });

  it("awaits an async export's promise like any other function's", async () => {
    const counter = `bundled-async-${Date.now()}`;
    const later = await loadBundledFunction(withExport(countingBundle(counter), "later"), { modulesDir });
    const pending = later(5);
    expect(pending).toBeInstanceOf(Promise);
    expect(await pending).toEqual({ x: 5, runs: 1 });
  });

  it("resolves externals from the modules directory, through ESM import and CommonJS require", async () => {
    // fake-esm is not installed in the project: it resolves on the endpoint because it is named external;
    // @fake/cjs-native is installed there, with a binding.gyp, so it stays external by itself.
    const bundled = BundledCode.from(join(root, "project", "tasks.ts"), "run", { external: ["fake-esm"] });
    const externals = (JSON.parse(bundled.payload.data) as { externals: string[] }).externals;
    expect(externals).toEqual(["@fake/cjs-native", "fake-esm"]);
    const fn = await loadBundledFunction(bundled.payload.data, { modulesDir });
    expect(await fn([1, 2])).toMatchObject({ tripled: [3, 6], greeting: "hello, worker" });
    const where = await loadBundledFunction(
      encodeBundledCode('import { where } from "fake-esm";\nexport const f = () => where;', "f", ["fake-esm"]),
      { modulesDir },
    );
    expect(await where()).toBe(pathToFileURL(join(modulesDir, "node_modules", "fake-esm", "index.js")).href);
  });

  it("fails a task that needs a package the modules directory lacks, naming it and the directory", async () => {
    const data = encodeBundledCode('import { greet } from "fake-esm";\nexport const hi = () => greet("x");', "hi", [
      "fake-esm",
    ]);
    const err = await rejection(loadBundledFunction(data, { modulesDir: emptyModulesDir }));
    expect(err.code).toBe("BUNDLE_EXTERNAL_MISSING");
    expect(err.message).toBe(
      `The function needs package fake-esm, which is not installed in ${emptyModulesDir} on this endpoint; run \`npm install fake-esm\` in ${emptyModulesDir}, or set engine.modules_dir to a directory where it is installed.`,
    );
    // CommonJS require (a bundled CommonJS dependency requiring a native package) fails the same way.
    const cjs = BundledCode.from(join(root, "project", "tasks.ts"), "run", { external: ["fake-esm"] });
    installFakePackage(emptyModulesDir, "fake-esm", {
      "package.json": JSON.stringify({ name: "fake-esm", type: "module", exports: "./index.js" }),
      "index.js": 'export const greet = (who) => "hi, " + who;\n',
    });
    const cjsErr = await rejection(loadBundledFunction(cjs.payload.data, { modulesDir: emptyModulesDir }));
    expect(cjsErr.message).toMatch(
      /^The function needs package @fake\/cjs-native, which is not installed in .*empty-modules on this endpoint; /,
    );
    // Once the admin installs what was missing, the next task loads the bundle without a worker restart.
    expect(await (await loadBundledFunction(data, { modulesDir: emptyModulesDir }))()).toBe("hi, x");
  });

  it("refuses a payload that is not a valid bundle, or an export that is not a function", async () => {
    const good = countingBundle(`bundled-invalid-${Date.now()}`);
    const tampered = JSON.stringify({ ...JSON.parse(good), code: "export const add = () => 'evil';" });
    expect((await rejection(loadBundledFunction(tampered, { modulesDir }))).message).toMatch(
      /^The conduit\.BundledCode payload is invalid: its hash does not match its code; /,
    );
    expect((await rejection(loadBundledFunction("{", { modulesDir }))).message).toMatch(/is invalid: it is not JSON/);
    expect(
      (await rejection(loadBundledFunction(JSON.stringify({ ...JSON.parse(good), v: 2 }), { modulesDir }))).message,
    ).toMatch(/its version is 2, and this worker reads version 1/);
    const notFn = await rejection(loadBundledFunction(withExport(good, "notAFunction"), { modulesDir }));
    expect(notFn.message).toBe(
      `The bundled module's export "notAFunction" is a number, not a function; bundle an export that is a function.`,
    );
    const missing = await rejection(loadBundledFunction(withExport(good, "nope"), { modulesDir }));
    expect(missing.message).toMatch(/export "nope" is missing, not a function/);
    // Once a hash is loaded, a payload naming it runs the module that was checked against it.
    expect(await (await loadBundledFunction(tampered, { modulesDir }))(1, 2)).toBe(3);
  });
});

describe("engine.modules_dir reaches the workers", () => {
  it("through CONDUIT_MODULES_DIR, with ~ expanded, defaulting to $CONDUIT_USER_DIR/modules", () => {
    expect(workerModulesDir(withModulesDir({}, "~/mods"))).toBe(join(homedir(), "mods"));
    expect(workerModulesDir(withModulesDir({}, "/srv/conduit/modules"))).toBe("/srv/conduit/modules");
    expect(withModulesDir({ A: "1" }, undefined)).toEqual({ A: "1" });
    const userDir = process.env.CONDUIT_USER_DIR;
    process.env.CONDUIT_USER_DIR = join(root, "user-dir");
    try {
      expect(workerModulesDir({})).toBe(join(root, "user-dir", "modules"));
    } finally {
      if (userDir === undefined) delete process.env.CONDUIT_USER_DIR;
      else process.env.CONDUIT_USER_DIR = userDir;
    }
  });
});
