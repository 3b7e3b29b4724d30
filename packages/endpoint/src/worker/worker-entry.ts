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
  const beside = fileURLToPath(new URL(`./${name}.js`, import.meta.url));
  if (existsSync(beside)) return beside;
  // Loaded from the TypeScript sources (vitest, tsx): the entries are the built files in dist/.
  const built = beside.replace(`${sep}src${sep}worker${sep}`, `${sep}dist${sep}worker${sep}`);
  if (built !== beside && existsSync(built)) return built;
  throw new ConduitError(
    "WORKER_ENTRY_MISSING",
    `The worker entry ${built} does not exist; build the endpoint package first (npm run build, or npx tsc -b packages/endpoint).`,
  );
}
