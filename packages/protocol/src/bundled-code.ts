/**
 * The data of a `conduit.BundledCode` payload, as the SDK writes it and the
 * worker reads it: one module bundled with its imports by esbuild (ESM), the
 * name of the export to call, the SHA-256 of the code (workers cache bundles
 * by it) and the packages left out of the bundle, which the worker resolves
 * from its modules directory.
 */
import type { createHash as CreateHash } from "node:crypto";
import { createRequire } from "node:module";
import { ConduitError } from "./errors.js";

export interface BundledCodeData {
  v: 1;
  /** The bundle: an ES module's text. */
  code: string;
  /** The export of `code` that the task calls (`default` for a default export). */
  export: string;
  /** SHA-256 of `code`, lowercase hex. */
  hash: string;
  /** Package names the bundle imports but does not contain (native addons, explicit externals). */
  externals: string[];
}

/** node:crypto, loaded at the first hash: a worker that never runs a bundle does not pay for it at its start. */
const require = createRequire(import.meta.url);

export function bundleHash(code: string): string {
  const { createHash } = require("node:crypto") as { createHash: typeof CreateHash };
  return createHash("sha256").update(code, "utf8").digest("hex");
}

export function encodeBundledCode(code: string, exportName: string, externals: readonly string[]): string {
  const data: BundledCodeData = { v: 1, code, export: exportName, hash: bundleHash(code), externals: [...externals] };
  return JSON.stringify(data);
}

/**
 * Parses and checks the payload's data. It does not hash the code (the worker does, once, before it
 * first imports a bundle): use {@link checkBundleHash} before running code not seen before.
 */
export function decodeBundledCode(data: string): BundledCodeData {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch (err) {
    throw invalid(`it is not JSON (${(err as Error).message})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw invalid("it is not a JSON object");
  const value = parsed as Record<string, unknown>;
  if (value.v !== 1) throw invalid(`its version is ${JSON.stringify(value.v)}, and this worker reads version 1`);
  for (const key of ["code", "export", "hash"] as const) {
    if (typeof value[key] !== "string" || value[key] === "") throw invalid(`"${key}" is not a non-empty string`);
  }
  const externals = value.externals;
  if (!Array.isArray(externals) || !externals.every((name) => typeof name === "string")) {
    throw invalid(`"externals" is not a list of package names`);
  }
  return value as unknown as BundledCodeData;
}

/** Throws unless `hash` is the SHA-256 of `code` (a truncated or altered payload). */
export function checkBundleHash(bundle: BundledCodeData): void {
  if (bundleHash(bundle.code) !== bundle.hash) throw invalid("its hash does not match its code");
}

function invalid(reason: string): ConduitError {
  return new ConduitError(
    "DESERIALIZATION_FAILED",
    `The conduit.BundledCode payload is invalid: ${reason}; create it with BundledCode.from() from the same Conduit version as the endpoint.`,
  );
}
