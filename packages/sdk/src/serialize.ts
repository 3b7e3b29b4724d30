/**
 * How the SDK ships functions, arguments and results.
 *
 * Functions travel as `conduit.SourceCode`: the function's source text, which
 * the worker evaluates as an expression. Only the text crosses the wire, so a
 * function must be self-contained: variables it closes over and modules it
 * uses from outside its body are not there on the endpoint (import inside the
 * body with `await import(...)`, or pass values as arguments).
 *
 * Arguments travel as `conduit.JSONData` of `{args, kwargs?}`; results come
 * back in whatever data strategy the worker used, decoded by the protocol.
 */
import {
  type CallArguments,
  ConduitError,
  deserializeData,
  fromWireError,
  type Payload,
  SOURCE_CODE,
  serializeJson,
  type TaskState,
  type WireError,
} from "@conduit/protocol";

/** Any function, whatever its parameters (what `registerFunction` and `functionSource` accept). */
export type AnyFunction = (...args: never[]) => unknown;

const NOT_SERIALIZABLE = "FUNCTION_NOT_SERIALIZABLE";

/**
 * The source text of `fn` as the worker will evaluate it: plain, async and
 * generator functions and arrows as written; method shorthand (`add(a, b) {…}`)
 * rewritten to `function add(a, b) {…}`; the `__name(…)` helpers that tsx and
 * esbuild (`keepNames`) insert removed, since the worker does not define them.
 * Refuses, with one sentence, classes and functions whose source is not
 * available (bound and native functions).
 */
export function functionSource(fn: AnyFunction): string {
  if (typeof fn !== "function") {
    throw new ConduitError(
      NOT_SERIALIZABLE,
      `Expected a function, got ${fn === null ? "null" : typeof fn}; pass a function or an arrow function.`,
    );
  }
  return normalizeSource(Function.prototype.toString.call(fn), fn.name);
}

/** {@link functionSource} on the printed text of a function named `name`. */
export function normalizeSource(text: string, name = ""): string {
  const label = name ? `Function ${name}` : "The function";
  if (/^class\b/.test(text)) {
    throw new ConduitError(
      NOT_SERIALIZABLE,
      `${name || "This"} is a class, which cannot be submitted; submit a function that defines and uses the class inside its body.`,
    );
  }
  if (/\{\s*\[native code\]\s*\}\s*$/.test(text)) {
    throw new ConduitError(
      NOT_SERIALIZABLE,
      name.startsWith("bound ")
        ? `${name.slice(6) ? `Function ${name.slice(6)}` : "The function"} is bound, so its source is not available; submit the unbound function and pass the bound values as arguments.`
        : `${label} is native code, so its source is not available; submit a function that calls it, e.g. (x) => Math.sqrt(x).`,
    );
  }
  const source = stripNameHelpers(text);
  if (parses(source)) return source;
  for (const candidate of methodRewrites(source)) {
    if (parses(candidate)) return candidate;
  }
  throw new ConduitError(
    NOT_SERIALIZABLE,
    `${label} cannot be shipped as source text (it is not a function expression once printed); submit a function declaration, a function expression or an arrow function.`,
  );
}

/** A `conduit.SourceCode` payload for `fn`. */
export function serializeFunction(fn: AnyFunction): Payload {
  return { strategy: SOURCE_CODE, data: functionSource(fn) };
}

/** A `conduit.JSONData` payload of `{args, kwargs?}`. */
export function serializeArguments(args: unknown[], kwargs?: Record<string, unknown>): Payload {
  const call: CallArguments = kwargs === undefined ? { args } : { args, kwargs };
  try {
    return serializeJson(call);
  } catch (err) {
    throw new ConduitError(
      "SERIALIZATION_FAILED",
      `The arguments cannot be serialized as JSON (${(err as Error).message}); pass plain data (objects, arrays, strings, numbers, booleans, null).`,
      { cause: err },
    );
  }
}

/** What a finished task reports, from a pushed result or a REST status. */
export interface TaskOutcome {
  taskId: string;
  state: TaskState;
  result?: Payload;
  error?: WireError;
}

/**
 * The task's value, or throws what the task raised: a TaskExecutionFailed with
 * the remote name, message and stack; TASK_PENDING if it has not finished yet.
 */
export function decodeOutcome(outcome: TaskOutcome): unknown {
  const { taskId, state, result, error } = outcome;
  switch (state) {
    case "success":
      return result === undefined ? undefined : deserializeData(result);
    case "failed":
    case "cancelled":
      throw fromWireError(
        error ?? {
          code: state === "failed" ? "TASK_FAILED" : "TASK_CANCELLED",
          name: "Error",
          message: `Task ${taskId} ${state === "failed" ? "failed" : "was cancelled"} without an error report; see the endpoint's log.`,
        },
      );
    default:
      throw new ConduitError(
        "TASK_PENDING",
        `Task ${taskId} is ${state}, not finished; ask again later, or submit through an Executor to have the result pushed.`,
      );
  }
}

function parses(source: string): boolean {
  try {
    // Compiles without running: the body is only parsed.
    new Function(`return (${source}\n);`);
    return true;
  } catch {
    return false;
  }
}

const METHOD_HEAD = /^(async\s+)?(\*\s*)?(?:(?:get|set)\s+(?=[^\s(]))?/;
const IDENTIFIER = /^[A-Za-z_$][\w$]*/;

/**
 * Method shorthand (`add(a, b) {…}`, `async *gen() {…}`, `["key"]() {…}`) as a
 * named function expression, and as an anonymous one for names that cannot be
 * a function's name (`delete`, computed keys).
 */
function methodRewrites(source: string): string[] {
  const head = METHOD_HEAD.exec(source);
  if (!head) return [];
  const prefix = `${head[1] ? "async " : ""}function${head[2] ? "*" : ""}`;
  const afterHead = source.slice(head[0].length);
  let name = "";
  let rest: string;
  const ident = IDENTIFIER.exec(afterHead);
  if (ident) {
    name = ident[0];
    rest = afterHead.slice(name.length);
  } else {
    const keyEnd = skipKey(afterHead);
    if (keyEnd < 0) return [];
    rest = afterHead.slice(keyEnd);
  }
  rest = rest.trimStart();
  if (!rest.startsWith("(")) return [];
  return name ? [`${prefix} ${name}${rest}`, `${prefix} ${rest}`] : [`${prefix} ${rest}`];
}

/** End of a string, numeric or `[computed]` property key at the start of `text`, or -1. */
function skipKey(text: string): number {
  const first = text[0];
  if (first === '"' || first === "'") return skipString(text, 0);
  if (first === "[") return matchingClose(text, 0);
  const num = /^[\d.][\w.]*/.exec(text);
  return num ? num[0].length : -1;
}

/**
 * tsx/esbuild's keepNames turns `function inner() {}` inside a body into
 * `function inner() {} __name(inner, "inner");` and `const f = () => 1` into
 * `const f = __name(() => 1, "f")`. The statements are dropped and the
 * wrappers replaced by their first argument, in parentheses.
 */
function stripNameHelpers(text: string): string {
  if (!text.includes("__name(")) return text;
  let out = text.replace(/(^|[;{}\n])(\s*)__name\(\s*[\w$]+\s*,\s*"[^"\\\n]*"\s*\)\s*;/g, "$1$2");
  let from = 0;
  for (;;) {
    const at = out.indexOf("__name(", from);
    if (at < 0) return out;
    from = at + 1;
    if (at > 0 && /[\w$.]/.test(out[at - 1])) continue;
    const open = at + "__name".length;
    const close = matchingClose(out, open);
    if (close < 0) continue;
    const inner = out.slice(open + 1, close - 1);
    const comma = lastTopLevelComma(inner);
    if (comma < 0 || !/^\s*"[^"\\\n]*"\s*$/.test(inner.slice(comma + 1))) continue;
    // Parenthesized, so that `__name(() => f, "g")(x)` keeps calling the arrow, not `f`.
    out = `${out.slice(0, at)}(${inner.slice(0, comma).trim()})${out.slice(close)}`;
    from = at;
  }
}

const CLOSERS: Record<string, string> = { "(": ")", "[": "]", "{": "}" };

/** Index just past the bracket closing the one at `open`, skipping strings; -1 if unbalanced. */
function matchingClose(text: string, open: number): number {
  const stack: string[] = [];
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (c === '"' || c === "'" || c === "`") {
      i = skipString(text, i) - 1;
    } else if (c in CLOSERS) {
      stack.push(CLOSERS[c]);
    } else if (c === ")" || c === "]" || c === "}") {
      if (stack.pop() !== c) return -1;
      if (stack.length === 0) return i + 1;
    }
  }
  return -1;
}

/** Index just past the string literal starting at `start` (template literals read as plain strings). */
function skipString(text: string, start: number): number {
  const quote = text[start];
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === "\\") i++;
    else if (text[i] === quote) return i + 1;
  }
  return text.length;
}

function lastTopLevelComma(text: string): number {
  let depth = 0;
  let last = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"' || c === "'" || c === "`") i = skipString(text, i) - 1;
    else if (c in CLOSERS) depth++;
    else if (c === ")" || c === "]" || c === "}") depth--;
    else if (c === "," && depth === 0) last = i;
  }
  return last;
}
