/**
 * Free-variable analysis of a shipped function: which names it reads from
 * outside its body (other than the globals every worker has), and whether it
 * uses `this` or `import.meta` of the submitting module. Only the source text
 * travels, so function-source normalisation refuses a function with any of them.
 */
import vm from "node:vm";
import { children, type EsNode } from "./es-node.js";

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
const ALLOWED_GLOBALS: ReadonlySet<string> = new Set([...BUILTINS, ...NODE_GLOBALS]);

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

/**
 * Walks a binding pattern: `declare` gets each name it binds, in order, and
 * `evaluate` each expression in it (default values, computed keys), which reads
 * the enclosing scope.
 */
function walkPattern(
  pattern: EsNode | null | undefined,
  declare: (name: string) => void,
  evaluate: (node: EsNode) => void,
): void {
  if (!pattern) return;
  switch (pattern.type) {
    case "Identifier":
      declare(pattern.name as string);
      return;
    case "ObjectPattern":
      for (const p of pattern.properties as EsNode[]) {
        if (p.type === "RestElement") walkPattern(p.argument as EsNode, declare, evaluate);
        else {
          if (p.computed) evaluate(p.key as EsNode);
          walkPattern(p.value as EsNode, declare, evaluate);
        }
      }
      return;
    case "ArrayPattern":
      for (const e of pattern.elements as Array<EsNode | null>) walkPattern(e, declare, evaluate);
      return;
    case "RestElement":
      walkPattern(pattern.argument as EsNode, declare, evaluate);
      return;
    case "AssignmentPattern":
      walkPattern(pattern.left as EsNode, declare, evaluate);
      evaluate(pattern.right as EsNode);
      return;
    default:
      // Not a name (an assignment target such as `a.b`): all of it is read.
      evaluate(pattern);
  }
}

function ignore(): void {}

/** Names a binding pattern declares. */
function bindingNames(pattern: EsNode | null | undefined, out: Set<string>): void {
  walkPattern(pattern, (name) => out.add(name), ignore);
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

/** What a function refers to outside its body. */
export interface FreeVariableFindings {
  /** Free names other than Node's standard globals and the built-ins, in the order found. */
  free: string[];
  /** Uses a `this` not bound by something defined inside the function. */
  usesThis: boolean;
  /** Uses `import.meta`, which describes the submitting module. */
  usesImportMeta: boolean;
}

const VITE_IMPORT = /^__vite_ssr_import_\d+__$/;

/** The free variables of `fn`, a function or arrow expression node. */
export function analyzeFreeVariables(fn: EsNode): FreeVariableFindings {
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
  const visitPattern = (pattern: EsNode | null | undefined, scope: Scope) =>
    walkPattern(pattern, ignore, (node) => visit(node, scope));

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
