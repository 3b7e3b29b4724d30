/**
 * The values a user config template sees, made exactly as Globus makes them
 * (`_sanitize_user_json`, `_shell_escape_filter` in globus-compute's
 * endpoint/config/utils.py), and nothing but plain data: a JavaScript function
 * or class instance handed to minijinja would be callable from a template.
 */
import { ConfigError } from "../errors.js";
import { shellQuote } from "../shell-quote.js";

/** What may reach a template: JSON-like data only. */
export type TemplateValue = string | number | boolean | null | TemplateValue[] | { [key: string]: TemplateValue };

const MAX_DEPTH = 64;

/**
 * The user's variables as the template sees them: every string becomes its
 * JSON text (so `{{ worker_init }}` is always one quoted YAML scalar and cannot
 * inject keys), `null` becomes the text `null`, numbers and booleans pass.
 * `path` names the value in errors, e.g. `userEndpointConfig.worker_init`.
 */
export function sanitiseUserValue(value: unknown, path: string, depth = 0): TemplateValue {
  if (typeof value === "string") return pythonJsonString(value);
  if (typeof value === "number" || typeof value === "boolean") return value;
  if (value === null) return "null";
  if (depth < MAX_DEPTH && Array.isArray(value)) {
    return value.map((item, index) => sanitiseUserValue(item, `${path}[${index}]`, depth + 1));
  }
  if (depth < MAX_DEPTH && isPlainObject(value)) {
    // fromEntries defines own properties, so a key named __proto__ stays a key.
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, sanitiseUserValue(item, `${path}.${key}`, depth + 1)]),
    );
  }
  throw new ConfigError(
    `${path} is ${depth >= MAX_DEPTH ? `nested deeper than ${MAX_DEPTH} levels` : `not JSON data (${typeof value})`}; send strings, numbers, booleans, null, lists and objects only.`,
    { kind: "type" },
  );
}

/**
 * A deep copy of `value` holding only JSON-like data; `what` names it in the
 * error. Used for the data Conduit itself passes (parent config, identity).
 */
export function toTemplateData(value: unknown, what: string, depth = 0): TemplateValue {
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number" && Number.isFinite(value)) return value;
  if (depth < MAX_DEPTH && Array.isArray(value)) {
    return value.map((item) => (item === undefined ? null : toTemplateData(item, what, depth + 1)));
  }
  if (depth < MAX_DEPTH && isPlainObject(value)) {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, item]) => item !== undefined)
        .map(([key, item]) => [key, toTemplateData(item, what, depth + 1)]),
    );
  }
  throw new ConfigError(
    `${what} holds a value that is not plain data (${typeof value}); templates can only see strings, numbers, booleans, null, lists and mappings.`,
    { kind: "type" },
  );
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Python's `json.dumps(text)` with its default `ensure_ascii=True`: `"` and `\`
 * escaped, the five short escapes, every other character outside printable
 * ASCII as `\uXXXX` (lower-case hex; astral characters as their surrogate pair).
 */
export function pythonJsonString(text: string): string {
  let out = '"';
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const short = SHORT_ESCAPES[code];
    if (short !== undefined) out += short;
    else if (code < 0x20 || code > 0x7e) out += `\\u${code.toString(16).padStart(4, "0")}`;
    else out += text[i];
  }
  return `${out}"`;
}

const SHORT_ESCAPES: Record<number, string> = {
  34: '\\"',
  92: "\\\\",
  10: "\\n",
  13: "\\r",
  9: "\\t",
  8: "\\b",
  12: "\\f",
};

/** Outcome of the `shell_escape` filter; minijinja must not see a JavaScript exception (it poisons the engine). */
export type ShellEscapeOutcome = { ok: true; value: unknown } | { ok: false; reason: string };

/**
 * The `shell_escape` filter: a sanitised string (JSON text) is decoded,
 * shell-quoted and encoded again, so `{{ worker_init|shell_escape }}` is one
 * quoted YAML scalar holding one shell word. Values that are not strings, and
 * JSON text of something other than a string, pass unchanged.
 */
export function shellEscape(value: unknown): ShellEscapeOutcome {
  // minijinja hands a filter an undefined value even in strict mode; Jinja's StrictUndefined fails on it.
  if (value === undefined) {
    return {
      ok: false,
      reason:
        "shell_escape got an undefined value; define the variable in userEndpointConfig or give it a |default('\"\"')",
    };
  }
  if (typeof value !== "string") return { ok: true, value };
  // Python's json.loads also reads these three, as numbers.
  if (/^\s*(NaN|-?Infinity)\s*$/.test(value)) return { ok: true, value };
  if (value.trim() === "") {
    return {
      ok: false,
      reason: `shell_escape got empty text, which is not JSON text; write |default('""') rather than |default() before |shell_escape`,
    };
  }
  let decoded: unknown;
  try {
    decoded = JSON.parse(value);
  } catch {
    return {
      ok: false,
      reason: `shell_escape got ${JSON.stringify(value.length > 40 ? `${value.slice(0, 37)}...` : value)}, which is not JSON text; apply it to a user variable (e.g. {{ worker_init|shell_escape }}), not to text built in the template`,
    };
  }
  if (typeof decoded !== "string") return { ok: true, value };
  return { ok: true, value: pythonJsonString(shellQuote(decoded)) };
}
