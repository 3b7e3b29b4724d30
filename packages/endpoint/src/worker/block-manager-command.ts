/**
 * The shell command that starts a block manager: what a provider runs (after
 * worker_init) for each block. Its flags are the ones block-manager.ts reads.
 */
import { workerEntryPath } from "./worker-entry.js";

export interface BlockManagerLaunch {
  /** Where the interchange listens. */
  host: string;
  port: number;
  blockId: string;
  /** Worker processes the block manager forks. */
  workers: number;
  /** File holding the engine's secret (mode 0600). */
  secretFile: string;
}

/** Throws WORKER_ENTRY_MISSING when the package is not built. */
export function blockManagerCommand(launch: BlockManagerLaunch): string {
  return [
    process.execPath,
    workerEntryPath("block-manager"),
    "--host",
    launch.host,
    "--port",
    String(launch.port),
    "--block-id",
    launch.blockId,
    "--workers",
    String(launch.workers),
    "--secret-file",
    launch.secretFile,
  ]
    .map(shellQuote)
    .join(" ");
}

function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
