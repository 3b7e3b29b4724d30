/**
 * BundledCode through the whole stack: the SDK bundles a TypeScript module
 * (its relative imports inside, a native package left external), the service
 * routes it, and the endpoint's worker loads it once and resolves the native
 * package from the modules directory (`$CONDUIT_USER_DIR/modules` by default,
 * or the UEP config's `engine.modules_dir`).
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { BundledCode } from "@conduit/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type E2eStack, withStack } from "./helpers.js";

let stack: E2eStack;
let project: string;

function write(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}

/** A package with a native addon (so the SDK keeps it external), as `npm install` would leave it. */
function installNative(dir: string, name: string, body: string): void {
  write(join(dir, "node_modules", name, "package.json"), JSON.stringify({ name, main: "index.js" }));
  write(join(dir, "node_modules", name, "binding.gyp"), "{}\n");
  write(join(dir, "node_modules", name, "index.js"), body);
}

beforeAll(async () => {
  stack = await withStack({ endpointName: "bundles" });
  project = join(stack.userDir, "project");
  // The submitter's copies: only their presence matters, they must not travel.
  installNative(project, "@e2e/native", "exports.scale = () => { throw new Error('bundled the wrong copy'); };\n");
  installNative(project, "e2e-absent", "exports.nothing = 0;\n");
  // The endpoint's copy, in the default modules directory.
  installNative(join(stack.userDir, "modules"), "@e2e/native", "exports.scale = (n) => n * 10;\n");
  write(join(project, "helper.ts"), "export const offset = (n: number): number => n + 1;\n");
  write(
    join(project, "tasks.ts"),
    `import { scale } from "@e2e/native";
import { offset } from "./helper.js";
const state = { loads: ((globalThis as { __e2eLoads?: number }).__e2eLoads ?? 0) + 1, calls: 0 };
(globalThis as { __e2eLoads?: number }).__e2eLoads = state.loads;
export async function run(n: number): Promise<{ value: number; pid: number; loads: number; calls: number }> {
  await new Promise((r) => setTimeout(r, 1));
  state.calls++;
  return { value: offset(scale(n)), pid: process.pid, loads: state.loads, calls: state.calls };
}
`,
  );
  write(join(project, "absent.ts"), 'import { nothing } from "e2e-absent";\nexport const f = () => nothing;\n');
});

afterAll(async () => {
  await stack?.dispose();
});

describe("BundledCode end to end", () => {
  it("runs a bundled export on the endpoint, its top level once per worker, natives from the modules directory", async () => {
    const run = BundledCode.from(pathToFileURL(join(project, "tasks.ts")), "run");
    const ex = stack.executor();
    // The default template runs one worker: all three tasks share it.
    const results = await Promise.all(
      [1, 2, 3].map((n) => ex.submit<{ value: number; pid: number; loads: number; calls: number }>(run, n).result()),
    );
    expect(results.map((r) => r.value)).toEqual([11, 21, 31]);
    expect(new Set(results.map((r) => r.pid)).size).toBe(1);
    expect(results.map((r) => r.loads)).toEqual([1, 1, 1]);
    expect(results.map((r) => r.calls).sort()).toEqual([1, 2, 3]);
  });

  it("fails a task whose external the modules directory lacks, naming it and engine.modules_dir's directory", async () => {
    const templatePath = join(stack.userDir, "bundles", "user_config_template.yaml.j2");
    const template = readFileSync(templatePath, "utf8");
    const elsewhere = join(stack.userDir, "other-modules");
    mkdirSync(elsewhere);
    writeFileSync(templatePath, template.replace("engine:\n", "engine:\n   modules_dir: {{ modules_dir }}\n"));
    try {
      const ex = stack.executor({ modules_dir: elsewhere });
      const absent = BundledCode.from(join(project, "absent.ts"), "f");
      const err = await ex
        .submit(absent)
        .result()
        .then(
          (value) => new Error(`expected a failure, got ${JSON.stringify(value)}`),
          (e: unknown) => e as Error,
        );
      expect(err.message).toBe(
        `The function needs package e2e-absent, which is not installed in ${elsewhere} on this endpoint; run \`npm install e2e-absent\` in ${elsewhere}, or set engine.modules_dir to a directory where it is installed.`,
      );
      // The same UEP finds it once it is installed there, without a restart.
      installNative(elsewhere, "e2e-absent", "exports.nothing = 'here now';\n");
      expect(await ex.submit(absent).result()).toBe("here now");
    } finally {
      writeFileSync(templatePath, template);
    }
  });
});
