/**
 * Paths of the worker entry files. Workers run plain built JavaScript from
 * `dist/worker/`: a thread or a forked process cannot load TypeScript, and a
 * block may start on another node where only the built package exists.
 */
import { existsSync } from "node:fs";
import { sep } from "node:path";
import { fileURLToPath } from "node:url";
import { ConduitError } from "@conduit/protocol/task";

export type WorkerEntry = "thread-worker" | "process-worker" | "block-manager";

export function workerEntryPath(name: WorkerEntry): string {
  return builtEntryPath(new URL(`./${name}.js`, import.meta.url));
}

/**
 * The built file of an entry point given beside its caller's module (`new
 * URL("./x.js", import.meta.url)`): that file, or, when the caller was loaded
 * from the TypeScript sources (vitest, tsx), the same path in dist/.
 */
export function builtEntryPath(beside: URL): string {
  const path = fileURLToPath(beside);
  if (existsSync(path)) return path;
  const at = path.lastIndexOf(`${sep}src${sep}`);
  const built = at < 0 ? path : `${path.slice(0, at)}${sep}dist${sep}${path.slice(at + 5)}`;
  if (built !== path && existsSync(built)) return built;
  throw new ConduitError(
    "WORKER_ENTRY_MISSING",
    `The entry ${built} does not exist; build the endpoint package first (npm run build, or npx tsc -b packages/endpoint).`,
  );
}
