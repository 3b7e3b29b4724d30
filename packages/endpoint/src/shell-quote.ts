/**
 * Shell quoting, as Python's `shlex` does it: the `shell_escape` template
 * filter must match Globus's output byte for byte, and the commands Conduit
 * builds or shows an admin follow the same rule. At the top of `src` because
 * config, identity mapping and the worker all use it.
 */

/** Python's `shlex.quote`: safe text as is, anything else in single quotes. */
export function shellQuote(text: string): string {
  if (text === "") return "''";
  if (!/[^\w@%+=:,./-]/.test(text)) return text;
  return `'${text.replaceAll("'", `'"'"'`)}'`;
}

/** Python's `shlex.join`: one command line whose words are `argv`. */
export function shellJoin(argv: readonly string[]): string {
  return argv.map(shellQuote).join(" ");
}
