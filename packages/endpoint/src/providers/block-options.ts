/** Options every provider shares: how many blocks, and what runs before each one. */
import { integerField, stringField } from "../engines/option-fields.js";
import { ConfigError } from "../errors.js";

export const BLOCK_FIELDS = {
  /** Blocks started with the engine. @default 1 */
  init_blocks: integerField({ min: 0, fallback: 1 }),
  /** Blocks kept when idle. @default 0 */
  min_blocks: integerField({ min: 0, fallback: 0 }),
  /** Blocks never exceeded. @default 1 */
  max_blocks: integerField({ min: 1, fallback: 1 }),
  /** Nodes in each block. @default 1 */
  nodes_per_block: integerField({ min: 1, fallback: 1 }),
  /** Shell text run before each block's workers start, in the same shell. @default "" */
  worker_init: stringField(""),
};

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
