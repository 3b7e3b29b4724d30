/**
 * Shell quoting, as Python's `shlex` does it: the `shell_escape` template
 * filter must match Globus's output byte for byte, and the commands Conduit
 * builds or shows an admin follow the same rule. At the top of `src` because
 * config, identity mapping and the worker all use it.
 */

import { shellQuote } from "@conduit/protocol/wire";

/** Python's `shlex.quote` (shared with the worker's ShellFunction, in the protocol). */
export { shellQuote };

/** Python's `shlex.join`: one command line whose words are `argv`. */
export function shellJoin(argv: readonly string[]): string {
  return argv.map(shellQuote).join(" ");
}
