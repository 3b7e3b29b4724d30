/** Options every provider shares: how many blocks, and what runs before each one. */

import { ConfigError } from "../errors.js";
import { doc, fractionField, integerField, stringField } from "../option-fields.js";

export const BLOCK_FIELDS = {
  init_blocks: doc("Blocks started with the engine (at most `max_blocks`).", integerField({ min: 0, fallback: 1 })),
  min_blocks: doc("Blocks kept when idle (at most `max_blocks`).", integerField({ min: 0, fallback: 0 })),
  max_blocks: doc("Blocks never exceeded.", integerField({ min: 1, fallback: 1 })),
  nodes_per_block: doc("Nodes in each block (LocalProvider: 1).", integerField({ min: 1, fallback: 1 })),
  parallelism: doc(
    "Worker slots per waiting task that scaling aims for (0 to 1): 1 starts blocks for every waiting task, 0.5 for half of them, 0 only one block while tasks wait.",
    fractionField(1),
  ),
  worker_init: doc(
    "Shell text run before each block's workers start, in the same shell (its exports reach the workers).",
    stringField(""),
  ),
};

/** The block options every provider's table has. */
export interface BlockOptions {
  readonly init_blocks: number;
  readonly min_blocks: number;
  readonly max_blocks: number;
  readonly nodes_per_block: number;
  readonly parallelism: number;
  readonly worker_init: string;
}

/** The Provider properties read straight from its block options, written once for every provider. */
export abstract class BlockOptionsProvider<O extends BlockOptions> {
  constructor(protected readonly options: O) {}

  get initBlocks(): number {
    return this.options.init_blocks;
  }
  get minBlocks(): number {
    return this.options.min_blocks;
  }
  get maxBlocks(): number {
    return this.options.max_blocks;
  }
  get nodesPerBlock(): number {
    return this.options.nodes_per_block;
  }
  get parallelism(): number {
    return this.options.parallelism;
  }
  get workerInit(): string {
    return this.options.worker_init;
  }
}

export function checkBlockCounts(
  options: { init_blocks: number; min_blocks: number; max_blocks: number },
  path: string,
): void {
  if (options.min_blocks > options.max_blocks) {
    throw new ConfigError(
      `${path}.min_blocks (${options.min_blocks}) is more than ${path}.max_blocks (${options.max_blocks}); lower min_blocks or raise max_blocks.`,
    );
  }
  if (options.init_blocks > options.max_blocks) {
    throw new ConfigError(
      `${path}.init_blocks (${options.init_blocks}) is more than ${path}.max_blocks (${options.max_blocks}); lower init_blocks or raise max_blocks.`,
    );
  }
}

/**
 * worker_init as job-script lines, its status checked: a worker_init that
 * fails (a missing command, a failed `source`) stops the block with that
 * status and says so on stderr, instead of starting workers in a broken
 * environment.
 */
export function workerInitLines(workerInit: string): string[] {
  if (workerInit.trim() === "") return [];
  return [
    workerInit,
    "conduit_worker_init_status=$?",
    'if [ "$conduit_worker_init_status" -ne 0 ]; then',
    '  echo "worker_init failed with exit status $conduit_worker_init_status" >&2',
    '  exit "$conduit_worker_init_status"',
    "fi",
  ];
}
