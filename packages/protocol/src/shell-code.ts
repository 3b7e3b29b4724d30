/**
 * `conduit.ShellCode`: a shell command as a task's code (the SDK's
 * ShellFunction and MPIFunction). The payload is JSON of {@link ShellSpec};
 * the worker fills the command's `{name}` fields from the call's values,
 * each shell-quoted (`{name!raw}` inserts a value as is, `{{` and `}}` are
 * literal braces, as in Python's `str.format`), and runs it with bash.
 */
import { ConduitError } from "./errors.js";

/** Code strategy: a shell command (JSON of a ShellSpec). */
export const SHELL_CODE = "conduit.ShellCode";

/** What a ShellCode payload carries. */
export interface ShellSpec {
  /** The command template, e.g. `echo {message}`. */
  cmd: string;
  /** Seconds the command may run before its process group is killed (returncode 124); absent: no limit. */
  walltime?: number;
  /** How many of the last lines of stdout and stderr the result keeps. */
  snippetLines: number;
  /** File the command's stdout goes to (relative to the task's directory); absent: `<task id>.stdout`. */
  stdout?: string;
  /** File the command's stderr goes to; absent: `<task id>.stderr`. */
  stderr?: string;
  /** True for an MPIFunction: the command runs behind `$CONDUIT_MPI_PREFIX`. */
  mpi?: boolean;
}

/** What a ShellFunction's task resolves with, whatever its exit code. */
export interface ShellResult {
  /** The command as run, its fields filled. */
  cmd: string;
  /** The last `snippetLines` lines of stdout. */
  stdout: string;
  /** The last `snippetLines` lines of stderr. */
  stderr: string;
  /** The exit code; 124 when the walltime killed the command, 128+N when signal N did. */
  returncode: number;
  /** `CalledProcessError` for a non-zero exit, `TimeoutExpired` for a walltime, else null. */
  exceptionName: string | null;
}

/** Python's `shlex.quote`: safe text as is, anything else in single quotes. */
export function shellQuote(text: string): string {
  if (text === "") return "''";
  if (!/[^\w@%+=:,./-]/.test(text)) return text;
  return `'${text.replaceAll("'", `'"'"'`)}'`;
}

type Part = { text: string } | { field: string; raw: boolean };

const FIELD = /^([A-Za-z_][\w]*)(!raw)?$/;

/** The template's parts; throws SHELL_TEMPLATE_INVALID naming the bad spot and the fix. */
function parseTemplate(template: string): Part[] {
  const parts: Part[] = [];
  let text = "";
  for (let i = 0; i < template.length; i++) {
    const c = template[i];
    if ((c === "{" || c === "}") && template[i + 1] === c) {
      text += c;
      i++;
      continue;
    }
    if (c === "}") {
      throw templateError(`has a lone } at offset ${i}; write }} for a literal brace`);
    }
    if (c !== "{") {
      text += c;
      continue;
    }
    const end = template.indexOf("}", i);
    const inner = end < 0 ? "" : template.slice(i + 1, end);
    const m = FIELD.exec(inner);
    if (end < 0 || !m) {
      throw templateError(
        `has ${end < 0 ? "an unclosed {" : `the field {${inner}}`} at offset ${i}; fields are {name} or {name!raw}, and {{ and }} are literal braces (write \${{HOME}} for bash's \${HOME})`,
      );
    }
    if (text) parts.push({ text });
    text = "";
    parts.push({ field: m[1] as string, raw: m[2] !== undefined });
    i = end;
  }
  if (text) parts.push({ text });
  return parts;
}

function templateError(what: string): ConduitError {
  return new ConduitError("SHELL_TEMPLATE_INVALID", `The shell command ${what}.`);
}

/** The names of the template's fields; throws SHELL_TEMPLATE_INVALID for a malformed template. */
export function shellTemplateFields(template: string): string[] {
  return parseTemplate(template).flatMap((p) => ("field" in p ? [p.field] : []));
}

/**
 * The command with its fields filled from `values`: strings, numbers, booleans
 * and bigints, shell-quoted unless the field says `!raw`. A missing field or a
 * value of another type is refused (SHELL_TEMPLATE_INVALID) naming it.
 */
export function formatShellCommand(template: string, values: Record<string, unknown>): string {
  return parseTemplate(template)
    .map((part) => {
      if ("text" in part) return part.text;
      if (!Object.hasOwn(values, part.field)) {
        throw new ConduitError(
          "SHELL_TEMPLATE_INVALID",
          `The shell command needs a value for {${part.field}}; submit it as ex.submit(shellFunction, { ${part.field}: … }).`,
        );
      }
      const value = values[part.field];
      if (!["string", "number", "boolean", "bigint"].includes(typeof value)) {
        throw new ConduitError(
          "SHELL_TEMPLATE_INVALID",
          `The value for {${part.field}} is ${value === null ? "null" : Array.isArray(value) ? "an array" : typeof value === "object" || typeof value === "undefined" ? `an ${typeof value}` : `a ${typeof value}`}; pass a string, a number or a boolean.`,
        );
      }
      const text = String(value);
      return part.raw ? text : shellQuote(text);
    })
    .join("");
}
