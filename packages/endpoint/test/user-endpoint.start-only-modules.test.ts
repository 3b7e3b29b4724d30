/**
 * What only a UEP's start uses stays out of the long-lived UEP: the template
 * renderer (minijinja's WebAssembly), the schema validator (ajv) and the YAML
 * parser load in its config child (config-child-main.ts), which exits once it
 * answered. Loaded in the UEP, they would stay for its whole life (README,
 * issue 23's (d)). Checked on the import graph the UEP can reach from its two
 * entries, dynamic imports included; `import type` loads nothing.
 */
import { readFileSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const SRC = fileURLToPath(new URL("../src/", import.meta.url));
const UEP_ENTRIES = ["cli/start-user-endpoint.ts", "user-endpoint/uep-main.ts"];
const START_ONLY = ["minijinja-js", "ajv", "ajv-formats", "yaml"];

/** The specifiers a file loads at run time: value imports, re-exports and dynamic imports. */
function loadedSpecifiers(text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/^\s*(import|export)\s+([^;]*?)\s+from\s*["']([^"']+)["']/gm)) {
    const clause = (m[2] as string).trim();
    if (clause.startsWith("type ")) continue;
    const names = /^\{([^}]*)\}$/s.exec(clause)?.[1];
    const allTypes = names?.split(",").every((n) => n.trim() === "" || n.trim().startsWith("type "));
    if (!allTypes) found.push(m[3] as string);
  }
  for (const m of text.matchAll(/^\s*import\s*["']([^"']+)["']/gm)) found.push(m[1] as string);
  for (const m of text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)) found.push(m[1] as string);
  // createRequire's require, as user-config-schema.ts loads ajv.
  for (const m of text.matchAll(/\brequire\(\s*["']([^"']+)["']\s*\)/g)) found.push(m[1] as string);
  return found;
}

/** `ajv/dist/2020.js` → `ajv`, `@conduit/protocol/wire` → `@conduit/protocol`. */
function packageOf(spec: string): string {
  return spec
    .split("/")
    .slice(0, spec.startsWith("@") ? 2 : 1)
    .join("/");
}

/** Packages (bare specifiers) reachable from the entries, each with the src file that loads it. */
function reachablePackages(entries: string[]): Map<string, string> {
  const packages = new Map<string, string>();
  const seen = new Set<string>();
  const queue = [...entries];
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    if (seen.has(file)) continue;
    seen.add(file);
    const text = readFileSync(resolve(SRC, file), "utf8");
    for (const spec of loadedSpecifiers(text)) {
      if (spec.startsWith(".")) {
        queue.push(relative(SRC, resolve(SRC, dirname(file), spec)).replace(/\.js$/, ".ts"));
      } else if (!spec.startsWith("node:") && !packages.has(packageOf(spec))) {
        packages.set(packageOf(spec), file);
      }
    }
  }
  return packages;
}

describe("the UEP's modules", () => {
  it("finds value imports and skips type-only ones", () => {
    const text = [
      'import { a, type B } from "x";',
      'import type { C } from "y";',
      'import { type D } from "z";',
      'export { e } from "./e.js";',
      'const m = await import("amqplib");',
      'const Ajv = require("ajv/dist/2020.js");',
    ].join("\n");
    expect(loadedSpecifiers(text)).toEqual(["x", "./e.js", "amqplib", "ajv/dist/2020.js"]);
  });

  it("reaches the renderer from the config child", () => {
    expect([...reachablePackages(["user-endpoint/config-child-main.ts"]).keys()]).toEqual(
      expect.arrayContaining(["minijinja-js", "ajv", "ajv-formats", "yaml"]),
    );
  });

  it("never load the renderer, ajv or the YAML parser in the UEP itself", () => {
    const packages = reachablePackages(UEP_ENTRIES);
    expect(packages.has("@conduit/protocol")).toBe(true);
    const loaded = START_ONLY.filter((p) => packages.has(p)).map((p) => `${p} (from src/${packages.get(p)})`);
    expect(loaded).toEqual([]);
  });
});
