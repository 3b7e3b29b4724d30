/**
 * Inside src/, a folder imports only the folders below it:
 *
 *   cli → manager → identity-mapping → user-endpoint → config → engines → providers → launchers → worker
 *
 * and every folder may use the top-level modules (errors.ts, logging.ts,
 * option-fields.ts…), which import no folder. index.ts, the package's entry,
 * may import anything. The UEP renders its own template, so config sits below
 * user-endpoint; identity-mapping is the MEP's policy, above the UEP.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const SRC = fileURLToPath(new URL("../src/", import.meta.url));

/** Highest first. */
const ORDER = [
  "cli",
  "manager",
  "identity-mapping",
  "user-endpoint",
  "config",
  "engines",
  "providers",
  "launchers",
  "worker",
] as const;

/** The entry point, above every folder. */
const ENTRY = "index.ts";

/** Every `.ts` file below `dir`, relative to src/. */
function sourceFiles(dir = SRC): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return e.name.endsWith(".ts") ? [relative(SRC, path)] : [];
  });
}

/** The relative specifiers of a file's static imports, re-exports and dynamic imports. */
function relativeImports(text: string): string[] {
  const found: string[] = [];
  const patterns = [
    /^\s*(?:import|export)\s[^;]*?\sfrom\s*["'](\.{1,2}\/[^"']+)["']/gm,
    /^\s*import\s*["'](\.{1,2}\/[^"']+)["']/gm,
    /\bimport\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g,
  ];
  for (const pattern of patterns) for (const m of text.matchAll(pattern)) found.push(m[1] as string);
  return found;
}

/** A src-relative file's rank: a folder's index in ORDER, top-level modules below them all, the entry above. */
function rank(file: string): number {
  if (file === ENTRY) return -1;
  const folder = file.includes(sep) ? file.split(sep)[0] : undefined;
  if (folder === undefined) return ORDER.length;
  const index = (ORDER as readonly string[]).indexOf(folder);
  if (index === -1)
    throw new Error(`src/${folder} is not in the layering order of test/layering.test.ts; add it there.`);
  return index;
}

function upwardImports(): string[] {
  const problems: string[] = [];
  for (const file of sourceFiles()) {
    const text = readFileSync(join(SRC, file), "utf8");
    for (const spec of relativeImports(text)) {
      const target = relative(SRC, resolve(SRC, dirname(file), spec));
      if (target.startsWith("..")) {
        problems.push(`src/${file} imports ${spec}, which is outside src/.`);
        continue;
      }
      if (rank(target) < rank(file)) {
        problems.push(`src/${file} imports ${spec}: ${place(target)} is above ${place(file)}.`);
      }
    }
  }
  return problems;
}

function place(file: string): string {
  if (file === ENTRY) return "the entry point index.ts";
  return file.includes(sep) ? `src/${file.split(sep)[0]}` : `the top-level module src/${file}`;
}

describe("endpoint layering", () => {
  it("finds the imports of every kind it checks", () => {
    const text = [
      'import { a } from "../engines/x.js";',
      'import type { B } from "./y.js";',
      "import {\n  c,\n  d,\n} from '../worker/z.js';",
      'export { e } from "../f.js";',
      'import "./side-effect.js";',
      'const m = await import("../cli/g.js");',
      'import { h } from "@conduit/protocol";',
    ].join("\n");
    expect(relativeImports(text)).toEqual([
      "../engines/x.js",
      "./y.js",
      "../worker/z.js",
      "../f.js",
      "./side-effect.js",
      "../cli/g.js",
    ]);
  });

  it("has every src folder in its order", () => {
    const folders = readdirSync(SRC, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
    expect(folders).toEqual([...ORDER].sort());
  });

  it("has no import that runs back up the order", () => {
    expect(upwardImports()).toEqual([]);
  });
});
