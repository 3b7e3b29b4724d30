/**
 * Function-source normalisation: the text a worker evaluates for a submitted
 * function. `Function.prototype.toString` gives the function as the runtime
 * prints it; this module parses it (acorn) as one function expression, rewrites
 * method shorthand, undoes what compilers and loaders add, and refuses, before
 * anything is sent, a function whose source would not run on its own there
 * (see free-variables.ts).
 */
import { ConduitError } from "@conduit/protocol";
import { type Node as AcornNode, parse } from "acorn";
import { children, type EsNode } from "./es-node.js";
import { analyzeFreeVariables } from "./free-variables.js";

/** Any function, whatever its parameters (what `registerFunction` and `functionSource` accept). */
export type AnyFunction = (...args: never[]) => unknown;

const NOT_SERIALIZABLE = "FUNCTION_NOT_SERIALIZABLE";

/**
 * The source text of `fn` as the worker will evaluate it: plain, async and
 * generator functions and arrows as written; method shorthand (`add(a, b) {…}`)
 * rewritten to `function add(a, b) {…}`; what tsx, esbuild and vitest add on
 * the way undone (`__name(…)` wrappers and statements, `static{__name(this,"K")}`
 * blocks, `__vite_ssr_dynamic_import__`, `__vite_ssr_import_meta__`).
 * Refuses, with one sentence: classes, bound and native functions, `this`,
 * `import.meta`, and free variables other than Node's standard globals.
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
  let parsed: Parsed | undefined;
  for (const candidate of [text, ...methodRewrites(text)]) {
    parsed = parseFunction(candidate);
    if (parsed) break;
  }
  if (!parsed) {
    throw new ConduitError(
      NOT_SERIALIZABLE,
      `${label} cannot be shipped as source text (it is not a function expression once printed); submit a function declaration, a function expression or an arrow function.`,
    );
  }
  parsed = undoTransforms(parsed);
  checkSelfContained(parsed.fn, label);
  return parsed.source;
}

// ---------------------------------------------------------------------------------------------
// Parsing

interface Parsed {
  source: string;
  /** The function node; positions are in `source` shifted by {@link OPEN}. */
  fn: EsNode;
}

const OPEN = 1;

/** Parses `source` as one parenthesized function expression, or undefined. */
function parseFunction(source: string): Parsed | undefined {
  let root: AcornNode;
  try {
    root = parse(`(${source}\n)`, {
      ecmaVersion: "latest",
      sourceType: "script",
      // Lets `import.meta` (vitest's __vite_ssr_import_meta__, undone) parse in a script.
      allowImportExportEverywhere: true,
    });
  } catch {
    return undefined;
  }
  const body = (root as unknown as { body: EsNode[] }).body;
  if (body.length !== 1 || body[0].type !== "ExpressionStatement") return undefined;
  const fn = body[0].expression as EsNode;
  if (fn.type !== "FunctionExpression" && fn.type !== "ArrowFunctionExpression") return undefined;
  if (fn.start !== OPEN || fn.end !== OPEN + source.length) return undefined;
  return { source, fn };
}

// ---------------------------------------------------------------------------------------------
// Undoing what compilers and loaders add

interface Edit {
  start: number;
  end: number;
  text: string;
}

/** `__name(x, "name")`: esbuild's keepNames helper. */
function isNameCall(node: EsNode): boolean {
  const callee = node.callee as EsNode | undefined;
  const args = node.arguments as EsNode[] | undefined;
  return (
    node.type === "CallExpression" &&
    callee?.type === "Identifier" &&
    callee.name === "__name" &&
    args?.length === 2 &&
    args[1].type === "Literal" &&
    typeof args[1].value === "string"
  );
}

/** The edits for the outermost helpers under `node` (inner ones are found on the next pass). */
function collectEdits(node: EsNode, text: string, edits: Edit[]): void {
  const slice = (n: EsNode) => text.slice(n.start, n.end);
  if (node.type === "ExpressionStatement" && isNameCall(node.expression as EsNode)) {
    const first = ((node.expression as EsNode).arguments as EsNode[])[0];
    // `__name(inner, "inner");` and `static { __name(this, "K"); }` go entirely.
    if (first.type === "Identifier" || first.type === "ThisExpression") {
      edits.push({ start: node.start, end: node.end, text: ";" });
      return;
    }
  }
  if (node.type === "StaticBlock") {
    const body = node.body as EsNode[];
    if (body.length > 0 && body.every((s) => s.type === "ExpressionStatement" && isNameCall(s.expression as EsNode))) {
      edits.push({ start: node.start, end: node.end, text: "" });
      return;
    }
  }
  if (isNameCall(node)) {
    // Parenthesized, so that `__name(() => f, "g")(x)` keeps calling the arrow, not `f`.
    edits.push({ start: node.start, end: node.end, text: `(${slice((node.arguments as EsNode[])[0])})` });
    return;
  }
  if (node.type === "Identifier" && node.name === "__vite_ssr_import_meta__") {
    edits.push({ start: node.start, end: node.end, text: "import.meta" });
    return;
  }
  if (node.type === "CallExpression") {
    const callee = node.callee as EsNode;
    if (callee.type === "Identifier" && callee.name === "__vite_ssr_dynamic_import__") {
      edits.push({ start: callee.start, end: callee.end, text: "import" });
      // vitest passes a second argument only with import attributes; keep them.
    }
  }
  for (const c of children(node)) collectEdits(c, text, edits);
}

function undoTransforms(parsed: Parsed): Parsed {
  let current = parsed;
  for (let pass = 0; pass < 50; pass++) {
    const wrapped = `(${current.source}\n)`;
    const edits: Edit[] = [];
    collectEdits(current.fn, wrapped, edits);
    if (edits.length === 0) return current;
    edits.sort((a, b) => b.start - a.start);
    let text = wrapped;
    for (const e of edits) text = text.slice(0, e.start) + e.text + text.slice(e.end);
    const next = parseFunction(text.slice(OPEN, -2));
    if (!next) return current;
    current = next;
  }
  return current;
}

// ---------------------------------------------------------------------------------------------
// Refusing what stays behind

function checkSelfContained(fn: EsNode, label: string): void {
  const { free, usesThis, usesImportMeta } = analyzeFreeVariables(fn);
  if (usesImportMeta) {
    // The worker evaluates the source as a script, where import.meta does not exist; it would describe this module anyway.
    throw new ConduitError(
      NOT_SERIALIZABLE,
      `${label} uses import.meta, which describes the submitting module and does not exist on the endpoint; pass the value you need (e.g. import.meta.url) as an argument, or ship the function with conduit.BundledCode.`,
    );
  }
  if (usesThis) {
    throw new ConduitError(
      NOT_SERIALIZABLE,
      `${label} uses \`this\`, which does not travel with its source; pass what \`this\` refers to as an argument instead.`,
    );
  }
  if (free.length > 0) {
    const names = free.join(", ");
    throw new ConduitError(
      NOT_SERIALIZABLE,
      free.length === 1
        ? `${label} uses ${names}, which is defined outside it and does not travel with its source; pass ${names} as an argument, or ship the function with conduit.BundledCode.`
        : `${label} uses ${names}, which are defined outside it and do not travel with its source; pass them as arguments, or ship the function with conduit.BundledCode.`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Method shorthand

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
