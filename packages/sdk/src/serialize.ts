/**
 * How the SDK ships functions, arguments and results.
 *
 * Functions travel as `conduit.SourceCode`: the function's source text, which
 * the worker evaluates as an expression. Only the text crosses the wire, so a
 * function must be self-contained: it may use Node's standard globals and
 * `await import(...)`, and nothing else from outside its body. The source is
 * parsed (acorn) and its free variables checked here, before anything is sent.
 *
 * Arguments travel as `{args}` in a data strategy, `conduit.StructuredData`
 * (the default) or `conduit.JSONData`; results come back in the task's data
 * strategy, decoded by the protocol.
 */
import vm from "node:vm";
import {
  ConduitError,
  deserializeData,
  fromWireError,
  type Payload,
  ReportedError,
  SOURCE_CODE,
  STRUCTURED_DATA,
  serializeCall,
  type TaskState,
  toWireError,
  type WireError,
} from "@conduit/protocol";
import { type Node as AcornNode, parse } from "acorn";

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

/** A `conduit.SourceCode` payload for `fn`. */
export function serializeFunction(fn: AnyFunction): Payload {
  return { strategy: SOURCE_CODE, data: functionSource(fn) };
}

/**
 * The call's arguments as `{args}` in a data strategy (`conduit.StructuredData`
 * by default, or `conduit.JSONData`); a value the strategy cannot carry is
 * refused naming its path, e.g. `args[0].when`.
 */
export function serializeArguments(args: unknown[], strategy: string = STRUCTURED_DATA): Payload {
  if (!Array.isArray(args)) {
    throw new ConduitError("SERIALIZATION_FAILED", "The arguments must be an array; pass them as [a, b, …].");
  }
  return serializeCall(args, strategy);
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
      return result === undefined ? undefined : deserializeData(result, { what: `The result of task ${taskId}` });
    case "failed":
    case "cancelled":
      throw fromWireError(
        error ??
          toWireError(
            new ReportedError(
              state === "failed" ? "TASK_FAILED" : "TASK_CANCELLED",
              "Error",
              `Task ${taskId} ${state === "failed" ? "failed" : "was cancelled"} without an error report; see the endpoint's log.`,
            ),
          ),
      );
    default:
      throw new ConduitError(
        "TASK_PENDING",
        `Task ${taskId} is ${state}, not finished; ask again later, or submit through an Executor to have the result pushed.`,
      );
  }
}

// ---------------------------------------------------------------------------------------------
// Parsing

/** A loose view of an ESTree node: the walker reads fields by name. */
interface EsNode {
  type: string;
  start: number;
  end: number;
  [field: string]: unknown;
}

interface Parsed {
  source: string;
  /** The function node; positions are in `source` shifted by {@link OPEN}. */
  fn: EsNode;
  root: EsNode;
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
  return { source, fn, root: root as unknown as EsNode };
}

function children(node: EsNode): EsNode[] {
  const out: EsNode[] = [];
  for (const key of Object.keys(node)) {
    const value = node[key];
    if (Array.isArray(value)) {
      for (const item of value) if (isNode(item)) out.push(item);
    } else if (isNode(value)) {
      out.push(value);
    }
  }
  return out;
}

function isNode(value: unknown): value is EsNode {
  return typeof value === "object" && value !== null && typeof (value as { type?: unknown }).type === "string";
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
// Free variables

/** Globals of a fresh V8 context: the ECMAScript built-ins. */
const BUILTINS: readonly string[] = vm.runInNewContext("Object.getOwnPropertyNames(globalThis)") as string[];

/** Node's standard globals, as every worker has them (not `require`, `module`, `__dirname`: workers run ESM). */
const NODE_GLOBALS = [
  "AbortController",
  "AbortSignal",
  "Blob",
  "BroadcastChannel",
  "Buffer",
  "ByteLengthQueuingStrategy",
  "CloseEvent",
  "CompressionStream",
  "CountQueuingStrategy",
  "Crypto",
  "CryptoKey",
  "CustomEvent",
  "DOMException",
  "DecompressionStream",
  "Event",
  "EventTarget",
  "File",
  "FormData",
  "Headers",
  "MessageChannel",
  "MessageEvent",
  "MessagePort",
  "Navigator",
  "Performance",
  "PerformanceEntry",
  "PerformanceMark",
  "PerformanceMeasure",
  "PerformanceObserver",
  "PerformanceObserverEntryList",
  "PerformanceResourceTiming",
  "ReadableByteStreamController",
  "ReadableStream",
  "ReadableStreamBYOBReader",
  "ReadableStreamBYOBRequest",
  "ReadableStreamDefaultController",
  "ReadableStreamDefaultReader",
  "Request",
  "Response",
  "SubtleCrypto",
  "TextDecoder",
  "TextDecoderStream",
  "TextEncoder",
  "TextEncoderStream",
  "TransformStream",
  "TransformStreamDefaultController",
  "URL",
  "URLSearchParams",
  "WebAssembly",
  "WebSocket",
  "WritableStream",
  "WritableStreamDefaultController",
  "WritableStreamDefaultWriter",
  "atob",
  "btoa",
  "clearImmediate",
  "clearInterval",
  "clearTimeout",
  "console",
  "crypto",
  "fetch",
  "global",
  "globalThis",
  "navigator",
  "performance",
  "process",
  "queueMicrotask",
  "setImmediate",
  "setInterval",
  "setTimeout",
  "structuredClone",
];

/** The free names a shipped function may use: Node's standard globals and the built-ins. */
export const ALLOWED_GLOBALS: ReadonlySet<string> = new Set([...BUILTINS, ...NODE_GLOBALS]);

interface Scope {
  names: Set<string>;
  parent?: Scope;
  /** Whether `this` here belongs to something defined inside the shipped function. */
  ownThis: boolean;
}

function declared(scope: Scope | undefined, name: string): boolean {
  for (let s = scope; s; s = s.parent) if (s.names.has(name)) return true;
  return false;
}

/** Names a binding pattern declares. */
function bindingNames(pattern: EsNode | null | undefined, out: Set<string>): void {
  if (!pattern) return;
  switch (pattern.type) {
    case "Identifier":
      out.add(pattern.name as string);
      return;
    case "ObjectPattern":
      for (const p of pattern.properties as EsNode[])
        bindingNames(p.type === "RestElement" ? p : (p.value as EsNode), out);
      return;
    case "ArrayPattern":
      for (const e of pattern.elements as Array<EsNode | null>) bindingNames(e, out);
      return;
    case "RestElement":
      bindingNames(pattern.argument as EsNode, out);
      return;
    case "AssignmentPattern":
      bindingNames(pattern.left as EsNode, out);
      return;
  }
}

const FUNCTION_TYPES = new Set(["FunctionDeclaration", "FunctionExpression", "ArrowFunctionExpression"]);

/** `var` names (and function declarations in nested blocks) of a function body, not crossing into inner functions. */
function hoistedVars(node: EsNode, out: Set<string>): void {
  for (const c of children(node)) {
    if (c.type === "VariableDeclaration" && c.kind === "var") {
      for (const d of c.declarations as EsNode[]) bindingNames(d.id as EsNode, out);
    }
    if (c.type === "FunctionDeclaration") {
      out.add((c.id as EsNode).name as string);
      continue;
    }
    if (FUNCTION_TYPES.has(c.type) || c.type === "ClassBody") continue;
    hoistedVars(c, out);
  }
}

/** Lexical declarations made directly in a block's statement list. */
function lexicalNames(statements: EsNode[], out: Set<string>): void {
  for (const s of statements) {
    if (s.type === "VariableDeclaration" && s.kind !== "var") {
      for (const d of s.declarations as EsNode[]) bindingNames(d.id as EsNode, out);
    } else if ((s.type === "ClassDeclaration" || s.type === "FunctionDeclaration") && s.id) {
      out.add((s.id as EsNode).name as string);
    }
  }
}

interface Findings {
  free: string[];
  usesThis: boolean;
  usesImportMeta: boolean;
}

const VITE_IMPORT = /^__vite_ssr_import_\d+__$/;

function analyze(fn: EsNode): Findings {
  const free = new Set<string>();
  let usesThis = false;
  let usesImportMeta = false;

  const reference = (name: string, scope: Scope) => {
    if (!declared(scope, name) && !ALLOWED_GLOBALS.has(name)) free.add(name);
  };

  const visitFunction = (node: EsNode, scope: Scope, top: boolean) => {
    const names = new Set<string>();
    const arrow = node.type === "ArrowFunctionExpression";
    if (node.type === "FunctionExpression" && node.id) names.add((node.id as EsNode).name as string);
    if (!arrow) names.add("arguments");
    for (const p of node.params as EsNode[]) bindingNames(p, names);
    const body = node.body as EsNode;
    if (body.type === "BlockStatement") hoistedVars(body, names);
    const inner: Scope = { names, parent: scope, ownThis: arrow ? scope.ownThis : !top };
    for (const p of node.params as EsNode[]) visitPattern(p, inner);
    visit(body, inner);
  };

  const visitClass = (node: EsNode, scope: Scope) => {
    if (node.superClass) visit(node.superClass as EsNode, scope);
    const names = new Set<string>();
    if (node.id) names.add((node.id as EsNode).name as string);
    const inner: Scope = { names, parent: scope, ownThis: true };
    for (const member of (node.body as EsNode).body as EsNode[]) {
      if (member.type === "StaticBlock") {
        visitBlock(member.body as EsNode[], inner);
        continue;
      }
      if (member.computed) visit(member.key as EsNode, scope);
      if (member.value) visit(member.value as EsNode, inner);
    }
  };

  const visitBlock = (statements: EsNode[], scope: Scope) => {
    const names = new Set<string>();
    lexicalNames(statements, names);
    const inner: Scope = { names, parent: scope, ownThis: scope.ownThis };
    for (const s of statements) visit(s, inner);
  };

  /** A binding pattern: only default values and computed keys are references. */
  const visitPattern = (pattern: EsNode | null | undefined, scope: Scope) => {
    if (!pattern) return;
    switch (pattern.type) {
      case "Identifier":
        return;
      case "ObjectPattern":
        for (const p of pattern.properties as EsNode[]) {
          if (p.type === "RestElement") visitPattern(p.argument as EsNode, scope);
          else {
            if (p.computed) visit(p.key as EsNode, scope);
            visitPattern(p.value as EsNode, scope);
          }
        }
        return;
      case "ArrayPattern":
        for (const e of pattern.elements as Array<EsNode | null>) visitPattern(e, scope);
        return;
      case "RestElement":
        visitPattern(pattern.argument as EsNode, scope);
        return;
      case "AssignmentPattern":
        visitPattern(pattern.left as EsNode, scope);
        visit(pattern.right as EsNode, scope);
        return;
      default:
        visit(pattern, scope);
    }
  };

  const visit = (node: EsNode, scope: Scope): void => {
    switch (node.type) {
      case "Identifier":
        reference(node.name as string, scope);
        return;
      case "ThisExpression":
        if (!scope.ownThis) usesThis = true;
        return;
      case "MemberExpression": {
        const object = node.object as EsNode;
        const property = node.property as EsNode;
        if (
          object.type === "Identifier" &&
          VITE_IMPORT.test(object.name as string) &&
          !declared(scope, object.name as string)
        ) {
          // vitest's rewrite of an imported binding: name the import, not vitest's variable.
          free.add(node.computed ? (object.name as string) : (property.name as string));
          return;
        }
        visit(object, scope);
        if (node.computed) visit(property, scope);
        return;
      }
      case "Property":
      case "PropertyDefinition":
      case "MethodDefinition":
        if (node.computed) visit(node.key as EsNode, scope);
        if (node.value) visit(node.value as EsNode, scope);
        return;
      case "LabeledStatement":
        visit(node.body as EsNode, scope);
        return;
      case "MetaProperty":
        if ((node.meta as EsNode).name === "import") usesImportMeta = true;
        return;
      case "BreakStatement":
      case "ContinueStatement":
      case "Super":
        return;
      case "FunctionDeclaration":
      case "FunctionExpression":
      case "ArrowFunctionExpression":
        visitFunction(node, scope, false);
        return;
      case "ClassDeclaration":
      case "ClassExpression":
        visitClass(node, scope);
        return;
      case "BlockStatement":
      case "StaticBlock":
        visitBlock(node.body as EsNode[], scope);
        return;
      case "SwitchStatement": {
        visit(node.discriminant as EsNode, scope);
        const cases = node.cases as EsNode[];
        const names = new Set<string>();
        lexicalNames(
          cases.flatMap((c) => c.consequent as EsNode[]),
          names,
        );
        const inner: Scope = { names, parent: scope, ownThis: scope.ownThis };
        for (const c of cases) {
          if (c.test) visit(c.test as EsNode, inner);
          for (const s of c.consequent as EsNode[]) visit(s, inner);
        }
        return;
      }
      case "ForStatement":
      case "ForInStatement":
      case "ForOfStatement": {
        const names = new Set<string>();
        const head = (node.init ?? node.left) as EsNode | null;
        if (head?.type === "VariableDeclaration" && head.kind !== "var") {
          for (const d of head.declarations as EsNode[]) bindingNames(d.id as EsNode, names);
        }
        const inner: Scope = { names, parent: scope, ownThis: scope.ownThis };
        for (const c of children(node)) visit(c, inner);
        return;
      }
      case "CatchClause": {
        const names = new Set<string>();
        bindingNames(node.param as EsNode | null, names);
        const inner: Scope = { names, parent: scope, ownThis: scope.ownThis };
        visitPattern(node.param as EsNode | null, inner);
        visit(node.body as EsNode, inner);
        return;
      }
      case "VariableDeclarator":
        visitPattern(node.id as EsNode, scope);
        if (node.init) visit(node.init as EsNode, scope);
        return;
      default:
        for (const c of children(node)) visit(c, scope);
    }
  };

  visitFunction(fn, { names: new Set(), ownThis: false }, true);
  return { free: [...free], usesThis, usesImportMeta };
}

function checkSelfContained(fn: EsNode, label: string): void {
  const { free, usesThis, usesImportMeta } = analyze(fn);
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
