/**
 * Renders user_config_template.yaml.j2 for one UEP, matching Globus's
 * `render_config_user_template` step for step:
 *   1. a user variable named like a reserved template name is refused;
 *   2. the raw variables are validated against user_config_schema.json;
 *   3. they are sanitised (strings become their JSON text, see template-values.ts);
 *   4. the template sees them plus `_GC = {parent_config, mapped_identity,
 *      user_runtime}` and the same three as deprecated top-level names;
 *   5. Jinja semantics: strict undefined, no autoescape, no trim/lstrip of
 *      blocks, CRLF read as LF, one final newline of each file dropped, sibling
 *      files for include/extends/import, and the one extra filter `shell_escape`;
 *      values printed as Python prints them, Jinja's `int`/`float`, `{% set a, b = … %}`,
 *      and none of minijinja's own globals, filters and tests (see strict-undefined.ts
 *      for the rewrite, python-text.ts for the printing).
 * The engine is minijinja (WebAssembly): a template reaches only the plain data
 * passed in, never a JavaScript object, and `fuel` bounds runaway loops.
 * This runs in the UEP, after privileges were dropped, never in the MEP (and
 * in the admin's own dry run, render-template-file.ts).
 */
import type { UserRuntime } from "@conduit/protocol/wire";
import { Environment } from "minijinja-js";
import { ConfigError, type RenderErrorKind } from "../errors.js";
import { jinjaFloatText, jinjaIntText, pythonStr } from "./python-text.js";
import { rewriteTemplate, type StrictSite, strictSiteOf } from "./strict-undefined.js";
import type { TemplateFiles } from "./template-files.js";
import { sanitiseUserValue, shellEscape, type TemplateValue, toTemplateData } from "./template-values.js";
import { validateUserConfig } from "./user-config-schema.js";

/** `mapped_identity` as the template sees it. */
export interface MappedIdentity {
  local: { uname: string; uid: number; gid: number; groups: number[]; gecos: string; shell: string; dir: string };
  conduit: { id: string };
}

export interface RenderInput {
  template: TemplateFiles;
  /** Text of user_config_schema.json; null or empty means no validation. */
  schema: string | null;
  /** The submitter's userEndpointConfig, as sent. */
  userConfig: Record<string, unknown>;
  userRuntime: UserRuntime | null;
  /** The MEP's config.yaml, parsed. */
  parentConfig: Record<string, unknown>;
  mappedIdentity: MappedIdentity | null;
}

const RESERVED_NAMES = ["parent_config", "user_runtime", "mapped_identity", "_GC"];

/**
 * Evaluation steps a render may take: ~1.5 s of looping on this kind of
 * machine, thousands of times what a site template with a few loops needs.
 */
const FUEL = 20_000_000;

/** The filter every output goes through (after `tojson`), printing it as Python's `str()` does. */
const PRINT_FILTER = "_conduit_print";

/**
 * Names minijinja defines and Jinja 3.1.2 does not. Jinja reads them as
 * undefined (a global) or fails where the template uses them (a filter or
 * test; when compiling, or at run time inside an `if`), so a template that
 * works here must not meet them: `{{ debug|default(false) }}` is `False` in
 * Jinja, and minijinja would print its `debug` function.
 */
const MINIJINJA_ONLY = {
  globals: ["debug"],
  filters: new Set(["bool", "chain", "lines", "pluralize", "split"]),
  tests: new Set(["safe", "startingwith", "endingwith"]),
};

/** The rendered YAML text; a ConfigError (one sentence first) for anything the user or admin must fix. */
export function renderUserConfigTemplate(input: RenderInput): string {
  const { template, userConfig } = input;
  if (typeof userConfig !== "object" || userConfig === null || Array.isArray(userConfig)) {
    throw new ConfigError(
      'userEndpointConfig must be an object of variable names to values; send e.g. { worker_init: "..." }.',
      { kind: "type" },
    );
  }
  for (const name of RESERVED_NAMES) {
    if (Object.hasOwn(userConfig, name)) {
      throw new ConfigError(
        `userEndpointConfig may not set '${name}', a name reserved for the template's own data; rename that variable.`,
        { kind: "reserved-name" },
      );
    }
  }
  validateUserConfig(input.schema, userConfig);

  const variables = Object.entries(userConfig).map(
    ([key, value]) => [key, sanitiseUserValue(value, `userEndpointConfig.${key}`)] as const,
  );
  const reserved = {
    parent_config: toTemplateData(input.parentConfig, "The parent endpoint's config.yaml"),
    mapped_identity: toTemplateData(input.mappedIdentity, "The mapped identity"),
    user_runtime: sanitiseUserValue(input.userRuntime ?? {}, "userRuntime"),
  };
  // fromEntries defines own properties, so a variable named __proto__ stays a variable.
  const context: Record<string, TemplateValue> = Object.fromEntries([
    ...variables,
    ["_GC", reserved],
    ...Object.entries(reserved),
  ]);
  return renderTemplate(template, context);
}

function renderTemplate(template: TemplateFiles, context: Record<string, TemplateValue>): string {
  const env = new Environment();
  // A JavaScript exception inside a filter leaves the WebAssembly engine unusable: filters record failures here.
  let failure: { message: string; kind: RenderErrorKind } | undefined;
  const firstUse = new Map<string, string>();
  const unparsable = new Map<string, unknown>();
  const sites: StrictSite[] = [];
  let freeable = true;
  try {
    env.debug = true; // error messages then carry the failing expression's span
    env.undefinedBehavior = "strict";
    env.enablePyCompat();
    env.keepTrailingNewline = true; // register() drops one final newline per file, as Jinja's lexer does
    env.fuel = FUEL;
    for (const name of MINIJINJA_ONLY.globals) env.removeGlobal(name);
    env.addFilter(PRINT_FILTER, (json: unknown) => (typeof json === "string" ? pythonStr(json) : json));
    // Jinja's int and float give their default where Python cannot read the value; minijinja's fail.
    // The rewrite puts these before minijinja's own, which turn their text into the number.
    env.addFilter("_conduit_int", jinjaIntText);
    env.addFilter("_conduit_float", jinjaFloatText);
    env.addFilter("shell_escape", (value: unknown) => {
      const outcome = shellEscape(value);
      if (outcome.ok) return outcome.value;
      failure ??= { message: `${template.name}: ${outcome.reason}.`, kind: "shell-escape-value" };
      return "";
    });
    // Jinja has no such filter or test: it fails where the template uses one, as Jinja would.
    const refuse = (kind: "filter" | "test", name: string) => () => {
      const where = firstUse.get(`${kind} ${name}`) ?? template.name;
      failure ??= {
        message: `${where}: Jinja has no ${kind} named '${name}' (minijinja's own), so Globus Compute would refuse this template; use a Jinja ${kind} instead.`,
        kind: "template-syntax",
      };
      return kind === "filter" ? "" : false;
    };
    for (const name of MINIJINJA_ONLY.filters) env.addFilter(name, refuse("filter", name));
    for (const name of MINIJINJA_ONLY.tests) env.addTest(name, refuse("test", name));
    for (const [name, text] of Object.entries(template.siblings)) {
      if (name === template.name) continue;
      try {
        register(env, name, text, sites, firstUse);
      } catch (err) {
        // Jinja parses a sibling only when it is included; an unrelated file that is not a template must not matter.
        unparsable.set(name, err);
      }
    }
    register(env, template.name, template.text, sites, firstUse);
    const output = env.renderTemplate(template.name, context);
    if (failure !== undefined) throw new ConfigError(failure.message, { kind: failure.kind });
    return output;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    if (failure !== undefined) throw new ConfigError(failure.message, { cause: err, kind: failure.kind });
    if (err instanceof Error && err.name === "RuntimeError") {
      // A panic inside the engine (e.g. a string too large to allocate); the instance is poisoned, so it is not freed.
      freeable = false;
      throw new ConfigError(
        `${template.name}: the template engine failed (${err.message}), typically on a value too large to build; simplify the template.`,
        { cause: err, kind: "sandbox" },
      );
    }
    // minijinja reports a failure inside an included file only as "error in <file>"; rendering that file
    // alone with the same variables recovers its own error (and line) in nearly every case.
    const renderAlone = (name: string): unknown => {
      try {
        env.renderTemplate(name, context);
        return undefined;
      } catch (inner) {
        return inner;
      }
    };
    throw translateError(err, {
      templateName: template.name,
      unparsable,
      renderAlone,
      sites,
      renderedAlone: new Set(),
    });
  } finally {
    if (freeable) env.free();
  }
}

/**
 * Registers one file: CRLF and CR read as LF and one final newline dropped, as
 * Jinja's lexer does, and autoescape off whatever the name (minijinja picks
 * escaping from it: `.yaml` and `.json` would get JSON escaping, and Jinja as
 * Globus runs it has none). Its strict positions are guarded so that an
 * undefined value fails there as in Jinja (see strict-undefined.ts).
 */
function register(
  env: Environment,
  name: string,
  text: string,
  sites: StrictSite[],
  firstUse: Map<string, string>,
): void {
  const lf = text.replace(/\r\n?/g, "\n");
  const body = lf.endsWith("\n") ? lf.slice(0, -1) : lf;
  const rewritten = rewriteTemplate(body, sites, { printFilter: PRINT_FILTER, numberFilterPrefix: "_conduit_" });
  // Compiled bare first, so that a syntax error is reported on the file's own text, not on the wrapper;
  // Jinja syntax minijinja reads only as rewritten (`{% set a, b = … %}`) is no error.
  try {
    env.addTemplate(name, body);
  } catch (err) {
    try {
      env.addTemplate(name, rewritten.text);
    } catch {
      throw err;
    }
  }
  for (const used of rewritten.names) {
    const key = `${used.kind} ${used.name}`;
    if (!firstUse.has(key)) firstUse.set(key, `${name} line ${body.slice(0, used.offset).split("\n").length}`);
  }
  // The wrapper and the guards add no line, so line numbers in errors stay the file's own.
  const wrap = (source: string) => `{% autoescape false %}${source}{% endautoescape %}`;
  try {
    env.addTemplate(name, wrap(rewritten.text));
  } catch {
    // A construct the guard misread: the file as written still renders, only with minijinja's leniency.
    env.addTemplate(name, wrap(body));
  }
}

interface EngineError {
  detail: string;
  file?: string;
  line?: number;
  /** The source text the engine pointed at, e.g. `worker_inti` or `cfg.nope`. */
  span?: string;
}

/**
 * minijinja's debug message: `<detail> (in <file>:<line>)`, then a source
 * excerpt whose `N > ` row is the failing line and whose `^^^` row marks the
 * failing expression.
 */
function parseEngineError(message: string): EngineError {
  const [head = "", ...rest] = message.split("\n");
  const located = /^(.*) \(in (.+):(\d+)\)$/.exec(head);
  const error: EngineError = located
    ? { detail: located[1], file: located[2], line: Number(located[3]) }
    : { detail: head };
  const rowIndex = rest.findIndex((row) => /^\s*\d+ > /.test(row));
  if (rowIndex >= 0) {
    // The caret row is aligned with the source row, margin included.
    const row = rest[rowIndex];
    const margin = /^\s*\d+ > /.exec(row)![0].length;
    const carets = /\^+/.exec(rest[rowIndex + 1] ?? "");
    if (carets && carets.index >= margin) {
      // The span of `a.b.c` may start at its first dot; take in the names before it.
      let start = carets.index;
      while (start > margin && /[\w.]/.test(row[start - 1])) start--;
      error.span = row.slice(start, carets.index + carets[0].length).trim() || undefined;
    }
  }
  return error;
}

interface ErrorContext {
  templateName: string;
  /** Siblings that do not parse, with their syntax error. */
  unparsable: Map<string, unknown>;
  renderAlone: (name: string) => unknown;
  /** The guarded expressions of strict-undefined.ts, by marker. */
  sites: readonly StrictSite[];
  /** Included files already rendered alone while looking for an error's origin. */
  renderedAlone: Set<string>;
}

function translateError(err: unknown, context: ErrorContext): ConfigError {
  const { templateName, unparsable } = context;
  const message = err instanceof Error ? err.message : String(err);
  const parsed = parseEngineError(message);
  const missingMatch = /non-existing template "([^"]+)"|template "([^"]+)" does not exist/.exec(parsed.detail);
  const missing = missingMatch?.[1] ?? missingMatch?.[2];
  if (missing !== undefined && unparsable.has(missing)) {
    // Not missing: that sibling does not parse. Report its own syntax error.
    return translateError(unparsable.get(missing), context);
  }
  const failedInclude = /^could not render include: error in "([^"]+)"$/.exec(parsed.detail)?.[1];
  if (failedInclude !== undefined && context.renderedAlone.has(failedInclude)) {
    // Back at a file already on the way down: the includes form a loop, and minijinja stopped at its depth limit.
    const where = `${parsed.file ?? templateName}${parsed.line !== undefined ? ` line ${parsed.line}` : ""}`;
    return new ConfigError(
      `${where}: ${failedInclude} includes itself, directly or through other files, so rendering it never ends; break the loop of include and import tags.`,
      { cause: err, kind: "sandbox" },
    );
  }
  if (failedInclude !== undefined) {
    context.renderedAlone.add(failedInclude);
    const inner = context.renderAlone(failedInclude);
    if (inner !== undefined) return translateError(inner, context);
  }
  const where = `${parsed.file ?? templateName}${parsed.line !== undefined ? ` line ${parsed.line}` : ""}`;
  const cause = (kind: RenderErrorKind) => ({ cause: err, kind });
  if (parsed.detail === "undefined value") {
    // Only the failing expression itself: the excerpt around it may show other guards of the same line.
    const guarded = parsed.span === undefined ? undefined : strictSiteOf(parsed.span, context.sites);
    const expression = guarded?.expression ?? parsed.span;
    const name = expression ? ` '${expression}'` : "";
    const own = expression !== undefined && /^(_GC|parent_config|user_runtime|mapped_identity)\b/.test(expression);
    const fix = own
      ? `test it with "is defined" or use |default()`
      : "define it in userEndpointConfig or use |default()";
    const kind = expression !== undefined && reachesInternals(expression) ? "sandbox" : "undefined-variable";
    return new ConfigError(`${where}: undefined value${name}; ${fix}.`, cause(kind));
  }
  const inherited = /^invalid operation: cycle in template inheritance\. "([^"]+)" was referenced more than once$/.exec(
    parsed.detail,
  )?.[1];
  if (inherited !== undefined) {
    return new ConfigError(
      `${where}: ${inherited} extends itself, directly or through other files, so rendering it never ends; break the loop of extends tags.`,
      cause("sandbox"),
    );
  }
  if (parsed.detail.startsWith("syntax error")) {
    return new ConfigError(`${where}: ${parsed.detail}; fix the template syntax.`, cause("template-syntax"));
  }
  if (parsed.detail.includes("ran out of fuel")) {
    return new ConfigError(
      `${where}: the template ran over its budget of ${FUEL} steps; look for a loop that never ends or grows too large.`,
      cause("sandbox"),
    );
  }
  if (missing !== undefined) {
    return new ConfigError(
      `${where}: ${parsed.detail}; put ${missing} in the same folder as ${templateName}.`,
      cause("template-not-found"),
    );
  }
  return new ConfigError(`${where}: ${parsed.detail}; fix the template.`, cause(evaluationKind(parsed.detail)));
}

/**
 * Names a template may not reach: Python's dunders (Jinja's sandbox refuses
 * them) and JavaScript's prototype members. minijinja never exposes them, so
 * they read as undefined; reporting them as `sandbox` tells an admin the
 * template tried to escape, not that a variable is missing.
 */
const INTERNAL_NAME =
  /^(__\w+__|constructor|prototype|toString|toLocaleString|valueOf|hasOwnProperty|isPrototypeOf|propertyIsEnumerable)$/;

/** Whether an expression such as `cfg.constructor` or `''.__class__.__mro__` looks up an internal (its first name is a variable). */
function reachesInternals(expression: string): boolean {
  return expression
    .split(/\W+/)
    .slice(1)
    .some((part) => INTERNAL_NAME.test(part));
}

/**
 * The kind of an evaluation error minijinja reports by its detail: an unknown
 * filter or test is a compile-time error in Jinja (TemplateAssertionError, a
 * syntax error); an unknown function or method is an undefined name there
 * (unless it names an internal); the rest (invalid operation, cannot unpack,
 * wrong arguments, …) are Jinja's TypeError and ValueError.
 */
function evaluationKind(detail: string): RenderErrorKind {
  if (/^unknown (filter|test)\b/.test(detail)) return "template-syntax";
  const called = /^unknown method: .* has no method named (\S+)$|^unknown function: (\S+) is unknown$/.exec(detail);
  if (called) return INTERNAL_NAME.test(called[1] ?? called[2] ?? "") ? "sandbox" : "undefined-variable";
  return "type";
}
