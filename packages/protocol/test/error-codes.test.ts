/**
 * ERROR_CODES is the list of every code: a code written anywhere in a
 * package's `src` (a string in SCREAMING_SNAKE_CASE, or a single word passed
 * as a code) that the table lacks fails here, with its file and line. Wire
 * errors come from error classes through toWireError, never from an object
 * written by hand.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { ConduitError, ERROR_CODES, isErrorCode, ReportedError, toWireError } from "@conduit/protocol";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const packagesDir = join(root, "packages");

/** Names in SCREAMING_SNAKE_CASE that are not Conduit's codes: other programs' codes, variables, keys. */
const FOREIGN = [
  /^CONDUIT_\w+$/, // environment variables
  /^GLOBUS_\w+$/,
  /^RLIMIT_\w+$/, // setrlimit resources, in sentences
  /^FST_\w+$/, // Fastify's error codes
  /^HPE_\w+$/, // Node's HTTP parser
  /^ERR_\w+$/, // Node's error codes
  /^(MODULE_NOT_FOUND|DATA_TYPE)$/, // CommonJS's code; the identity mapper's JSON key
  /^PARSL_\w+$/, // environment variables of Parsl's job scripts
  /^(OUT_OF_MEMORY|TERM_\w+)$/, // batch schedulers' job states and exit reasons
  /^(SLURM_\w+|CUDA_VISIBLE_DEVICES|ROCR_VISIBLE_DEVICES|ZE_AFFINITY_MASK)$/, // schedulers' and GPU runtimes' variables
  /^EXEC_(START|END)$/, // audit log states
];
/** Single words a code may be: told apart from SQL, signals, errno codes, log levels and methods by where they stand. */
const SINGLE_WORD_CODE = /(?:code:\s*|Error\(\s*|\?\s*)"([A-Z]{4,})"/g;

function sourceFiles(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== "generated" && entry.name !== "node_modules") files.push(...sourceFiles(path));
    } else if (entry.name.endsWith(".ts")) files.push(path);
  }
  return files;
}

/** Every code-like name in the packages' sources, with where it stands. */
function codesInSources(): Array<{ code: string; where: string }> {
  const found: Array<{ code: string; where: string }> = [];
  for (const pkg of readdirSync(packagesDir)) {
    let files: string[];
    try {
      files = sourceFiles(join(packagesDir, pkg, "src"));
    } catch {
      continue;
    }
    for (const file of files) {
      const text = readFileSync(file, "utf8");
      const where = (index: number) => `${relative(root, file)}:${text.slice(0, index).split("\n").length}`;
      for (const m of text.matchAll(/["'`]([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)["'`]/g)) {
        found.push({ code: m[1], where: where(m.index) });
      }
      // Over the whole text: a code's call often spans lines (`new ServiceError(\n  "UNAUTHORIZED",`).
      for (const m of text.matchAll(SINGLE_WORD_CODE)) found.push({ code: m[1], where: where(m.index) });
    }
  }
  return found;
}

describe("ERROR_CODES", () => {
  it("lists every code used in any package's src", () => {
    const found = codesInSources();
    // The scan finds the codes it should: a broken pattern would pass everything.
    const names = new Set(found.map((f) => f.code));
    for (const code of ["TASK_NOT_FOUND", "UEP_CRASHED", "UNAUTHORIZED", "WORKER_OUT_OF_MEMORY", "BAD_TASK"]) {
      expect(names).toContain(code);
    }
    const missing = found
      .filter(({ code }) => !isErrorCode(code) && !FOREIGN.some((re) => re.test(code)))
      .map(({ code, where }) => `${code} (${where})`);
    expect(missing, "codes missing from ERROR_CODES in packages/protocol/src/error-codes.ts").toEqual([]);
  });

  it("gives a status only where it is an HTTP error status", () => {
    for (const [code, info] of Object.entries(ERROR_CODES)) {
      const status = (info as { status?: number }).status;
      if (status !== undefined) expect([code, status >= 400 && status < 600]).toEqual([code, true]);
    }
  });

  it("lists no code that no package uses any more", () => {
    const used = new Set(codesInSources().map((f) => f.code));
    expect(Object.keys(ERROR_CODES).filter((code) => !used.has(code))).toEqual([]);
  });
});

describe("toWireError", () => {
  it("sends a ReportedError's code, name and sentence, without the stack of the side that raised it", () => {
    const cause = new Error("disk full");
    const wire = toWireError(new ReportedError("UEP_CRASHED", "UepCrashed", "It stopped.", { cause }));
    expect(wire).toMatchObject({ code: "UEP_CRASHED", name: "UepCrashed", message: "It stopped." });
    expect(wire).not.toHaveProperty("stack");
    expect(wire.cause).toMatchObject({ code: "TASK_EXCEPTION", name: "Error", message: "disk full" });
    expect(JSON.parse(JSON.stringify(toWireError(new ReportedError("BAD_TASK", "BadTask", "No args."))))).toEqual({
      code: "BAD_TASK",
      name: "BadTask",
      message: "No args.",
    });
  });

  it("keeps a ConduitError's code and a user error's stack", () => {
    const wire = toWireError(new ConduitError("BROKER_CLOSED", "The broker connection is closed."));
    expect(wire).toMatchObject({ code: "BROKER_CLOSED", name: "ConduitError" });
    const thrown = toWireError(new TypeError("boom"));
    expect(thrown).toMatchObject({ code: "TASK_EXCEPTION", name: "TypeError", message: "boom" });
    expect(thrown.stack).toMatch(/^TypeError: boom\n/);
  });
});
