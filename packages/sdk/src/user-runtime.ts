/**
 * The submitting runtime, sent with every submit: part of the UEP id (a new
 * runtime gets its own user endpoint process, as the seed describes) and a
 * template variable (`user_runtime`).
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import type { UserRuntime } from "@conduit/protocol";

/** This package's version, read from its package.json (one level above both src/ and dist/). */
export const SDK_VERSION: string = (
  JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
).version;

export function userRuntime(): UserRuntime {
  return {
    node_version: process.versions.node,
    sdk_version: SDK_VERSION,
    platform: process.platform,
    arch: process.arch,
    hostname: hostname(),
  };
}
