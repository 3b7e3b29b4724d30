/**
 * Serialization strategies. Every payload names the strategy that produced it,
 * so the worker decodes it with the same one (and an endpoint can refuse a
 * strategy through `allowed_serializers`).
 *
 * Code: `conduit.SourceCode` (a function's source text),
 * `conduit.BundledCode` (a module export bundled with its imports) and
 * `conduit.ShellCode` (a shell command, see shell-code.ts).
 * Data: `conduit.JSONData` (plain JSON values only, refusing anything JSON
 * would coerce or drop) and `conduit.StructuredData` (the default: Node's v8
 * serializer, base64, so Map, Set, Date, BigInt, RegExp, typed arrays, Error
 * and cycles survive the trip).
 */
import v8 from "node:v8";
import { ConduitError } from "./errors.js";
import { SHELL_CODE } from "./shell-code.js";

/** A serialized function, argument list or result. */
export interface Payload {
  /** Strategy name, e.g. `conduit.SourceCode`, `conduit.StructuredData`. */
  strategy: string;
  data: string;
}

/** Code strategy: the function's source text. */
export const SOURCE_CODE = "conduit.SourceCode";
/** Code strategy: a module's export, bundled with its imports by esbuild. */
export const BUNDLED_CODE = "conduit.BundledCode";
/** Data strategy: JSON text of plain JSON values only. */
export const JSON_DATA = "conduit.JSONData";
/** Data strategy: Node's structured clone (v8 serializer), base64. The default. */
export const STRUCTURED_DATA = "conduit.StructuredData";

export const CODE_STRATEGIES = [SOURCE_CODE, BUNDLED_CODE, SHELL_CODE] as const;
export const DATA_STRATEGIES = [JSON_DATA, STRUCTURED_DATA] as const;
export type CodeStrategy = (typeof CODE_STRATEGIES)[number];
export type DataStrategy = (typeof DATA_STRATEGIES)[number];

/** The arguments of a call, as the worker receives them. */
export interface CallArguments {
  args: unknown[];
  kwargs?: Record<string, unknown>;
}

export function isDataStrategy(name: string): name is DataStrategy {
  return (DATA_STRATEGIES as readonly string[]).includes(name);
}

export function isCodeStrategy(name: string): name is CodeStrategy {
  return (CODE_STRATEGIES as readonly string[]).includes(name);
}

/**
 * Serializes `value` with a data strategy; `path` names the value in errors
 * (e.g. `args`, `result`). Throws SERIALIZATION_FAILED naming the offending
 * path and the fix.
 */
export function serializeData(value: unknown, strategy: string = STRUCTURED_DATA, path = "value"): Payload {
  switch (strategy) {
    case JSON_DATA:
      return serializeJson(value, path);
    case STRUCTURED_DATA:
      return serializeStructured(value, path);
    default:
      throw new ConduitError(
        "SERIALIZATION_FAILED",
        `Data strategy ${strategy} is not known; use ${JSON_DATA} or ${STRUCTURED_DATA}.`,
      );
  }
}

/**
 * A call's arguments as `{args}` in a data strategy; a value the strategy
 * cannot carry is refused naming its path from `args` (e.g. `args[0].when`).
 */
export function serializeCall(args: unknown[], strategy: string = STRUCTURED_DATA): Payload {
  if (strategy === JSON_DATA) checkJsonValue(args, "args");
  else if (strategy === STRUCTURED_DATA) checkStructuredValue(args, "args");
  const call: CallArguments = { args };
  return serializeData(call, strategy, "args");
}

/** A `conduit.JSONData` payload; refuses anything that is not a plain JSON value, naming its path. */
export function serializeJson(value: unknown, path = "value"): Payload {
  checkJsonValue(value, path);
  return { strategy: JSON_DATA, data: JSON.stringify(value) };
}

/** A `conduit.StructuredData` payload; refuses functions and symbols, naming their path. */
export function serializeStructured(value: unknown, path = "value"): Payload {
  checkStructuredValue(value, path);
  let bytes: Buffer;
  try {
    bytes = v8.serialize(value);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new ConduitError(
      "SERIALIZATION_FAILED",
      `${path} cannot be cloned (${reason}); ${STRUCTURED_DATA} carries plain data, Map, Set, Date, BigInt, RegExp, typed arrays and Error: convert the rest to those.`,
      { cause: err },
    );
  }
  return { strategy: STRUCTURED_DATA, data: bytes.toString("base64") };
}

export interface DeserializeOptions {
  /**
   * Node version of the program that produced the payload (the task's
   * `submitter.nodeVersion`): a `conduit.StructuredData` payload from a newer
   * Node major than this one is refused naming both versions.
   */
  producerNodeVersion?: string;
  /** What the payload is, for error messages (e.g. `The arguments of task t1`). */
  what?: string;
}

/** Decodes a data payload by its strategy. Throws DESERIALIZATION_FAILED (name DeserializationError) naming the fix. */
export function deserializeData(payload: Payload, options: DeserializeOptions = {}): unknown {
  const what = options.what ?? "The payload";
  switch (payload.strategy) {
    case JSON_DATA:
      try {
        return JSON.parse(payload.data);
      } catch (err) {
        throw deserializationError(
          `${what} is not valid ${JSON_DATA} (${(err as Error).message}); serialize it with ${JSON_DATA}.`,
          err,
        );
      }
    case STRUCTURED_DATA: {
      checkNodeVersion(options.producerNodeVersion, what);
      try {
        return v8.deserialize(Buffer.from(payload.data, "base64"));
      } catch (err) {
        throw deserializationError(
          `${what} is not valid ${STRUCTURED_DATA} (${(err as Error).message}); serialize it with ${STRUCTURED_DATA} on a Node major no newer than ${process.versions.node}, or use ${JSON_DATA}.`,
          err,
        );
      }
    }
    default:
      throw deserializationError(
        `${what} uses data strategy ${payload.strategy}, which is not known here; serialize it with ${JSON_DATA} or ${STRUCTURED_DATA}.`,
      );
  }
}

function checkNodeVersion(producer: string | undefined, what: string): void {
  if (producer === undefined) return;
  const theirs = nodeMajor(producer);
  const ours = nodeMajor(process.versions.node);
  if (theirs !== undefined && ours !== undefined && theirs > ours) {
    throw deserializationError(
      `${what} came in ${STRUCTURED_DATA} from Node ${producer.replace(/^v/, "")}, newer than this worker's Node ${process.versions.node}; run the endpoint's workers on Node ${theirs} or newer, or submit with ${JSON_DATA}.`,
    );
  }
}

function nodeMajor(version: string): number | undefined {
  const m = /^v?(\d+)/.exec(version);
  return m ? Number(m[1]) : undefined;
}

/** A DESERIALIZATION_FAILED error named DeserializationError, as the worker reports it. */
export function deserializationError(message: string, cause?: unknown): ConduitError {
  const error = new ConduitError("DESERIALIZATION_FAILED", message, cause === undefined ? undefined : { cause });
  error.name = "DeserializationError";
  return error;
}

/** Byte length of a payload on the wire (UTF-8). */
export function payloadBytes(payload: Payload): number {
  return Buffer.byteLength(payload.data, "utf8") + Buffer.byteLength(payload.strategy, "utf8");
}

// ---------------------------------------------------------------------------------------------
// Checks

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

function child(path: string, key: string | number): string {
  if (typeof key === "number") return `${path}[${key}]`;
  return IDENTIFIER.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

function refuseJson(path: string, what: string): never {
  throw new ConduitError(
    "SERIALIZATION_FAILED",
    `${path} ${what}; ${JSON_DATA} carries plain JSON only: use ${STRUCTURED_DATA} or convert it.`,
  );
}

/** What a non-plain object is, for messages: `a Date`, `a Map`, `an instance of Point`. */
function describeObject(value: object): string {
  const tag = Object.prototype.toString.call(value).slice(8, -1);
  const ctor = (Object.getPrototypeOf(value) as { constructor?: { name?: unknown } } | null)?.constructor;
  const name = typeof ctor?.name === "string" && ctor.name ? ctor.name : tag;
  if (name === tag || ["Map", "Set", "Date", "RegExp", "Promise", "WeakMap", "WeakSet"].includes(tag)) {
    return `${/^[AEIO]/.test(name) ? "an" : "a"} ${name}`;
  }
  return `an instance of ${name}`;
}

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Throws unless `value` is a plain JSON value: null, a boolean, a finite
 * number, a string, an array without holes, or a plain object (prototype
 * Object.prototype or null, no symbol keys) of such values, without cycles.
 */
export function checkJsonValue(value: unknown, path = "value"): void {
  const ancestors = new Set<object>();
  const visit = (v: unknown, at: string): void => {
    switch (typeof v) {
      case "string":
      case "boolean":
        return;
      case "number":
        if (!Number.isFinite(v)) refuseJson(at, `is ${String(v)}`);
        return;
      case "undefined":
        refuseJson(at, "is undefined");
        break;
      case "bigint":
        refuseJson(at, "is a BigInt");
        break;
      case "symbol":
        refuseJson(at, "is a symbol");
        break;
      case "function":
        refuseJson(at, "is a function");
        break;
      default: {
        if (v === null) return;
        const obj = v as object;
        if (ancestors.has(obj)) refuseJson(at, "refers back to one of its parents (a cycle)");
        if (Array.isArray(obj)) {
          if (Object.getPrototypeOf(obj) !== Array.prototype) refuseJson(at, `is ${describeObject(obj)}`);
          ancestors.add(obj);
          for (let i = 0; i < obj.length; i++) {
            if (!(i in obj)) refuseJson(at, `is a sparse array (index ${i} is a hole)`);
            visit(obj[i], child(at, i));
          }
          ancestors.delete(obj);
          return;
        }
        if (!isPlainObject(obj)) refuseJson(at, `is ${describeObject(obj)}`);
        if (Object.getOwnPropertySymbols(obj).length > 0) refuseJson(at, "has a symbol key");
        ancestors.add(obj);
        for (const key of Object.keys(obj)) visit((obj as Record<string, unknown>)[key], child(at, key));
        ancestors.delete(obj);
      }
    }
  };
  visit(value, path);
}

function refuseStructured(path: string, what: string): never {
  throw new ConduitError(
    "SERIALIZATION_FAILED",
    `${path} is ${what}, which ${STRUCTURED_DATA} cannot carry; pass data instead (for code, call it inside the function or ship it with conduit.BundledCode).`,
  );
}

/** Throws, naming the path, where `value` holds a function or a symbol (the rest v8.serialize checks). */
export function checkStructuredValue(value: unknown, path = "value"): void {
  const seen = new Set<object>();
  const visit = (v: unknown, at: string): void => {
    if (typeof v === "function") refuseStructured(at, "a function");
    if (typeof v === "symbol") refuseStructured(at, "a symbol");
    if (typeof v !== "object" || v === null || seen.has(v)) return;
    seen.add(v);
    if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer || v instanceof Date || v instanceof RegExp) return;
    if (v instanceof Map) {
      let i = 0;
      for (const [k, val] of v) {
        visit(k, `${at}.keys()[${i}]`);
        visit(val, `${at}.get(${typeof k === "string" ? JSON.stringify(k) : `keys()[${i}]`})`);
        i++;
      }
      return;
    }
    if (v instanceof Set) {
      let i = 0;
      for (const item of v) visit(item, `${at}.values()[${i++}]`);
      return;
    }
    const record = v as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      visit(record[key], Array.isArray(v) && /^\d+$/.test(key) ? child(at, Number(key)) : child(at, key));
    }
  };
  visit(value, path);
}
