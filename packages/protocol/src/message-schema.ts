/**
 * The small subset of JSON Schema the broker messages are written in, a
 * checker driven by it, and {@link Static}, which derives a message's
 * TypeScript type from its schema, so the type and the check cannot drift.
 *
 * Hand-written rather than ajv: each refusal must be one sentence naming the
 * field by its path (`results[3].taskId is not a UUID`), and a `results`
 * message is checked item by item so that its good results survive a bad one.
 * Properties a schema does not name are allowed and left alone: an older
 * receiver keeps working when a newer sender adds a field (a change that
 * breaks receivers bumps the protocol version instead).
 */
import type { WireError } from "./errors.js";

export type Schema =
  | { readonly const: string | number }
  | { readonly type: "string"; readonly format?: "uuid"; readonly enum?: readonly string[] }
  | { readonly type: "number"; readonly minimum?: number }
  | { readonly type: "boolean" }
  | { readonly type: "null" }
  | { readonly type: "array"; readonly items: Schema }
  | {
      readonly type: "object";
      readonly properties?: { readonly [key: string]: Schema };
      readonly required?: readonly string[];
    }
  | { readonly anyOf: readonly Schema[] }
  /** A {@link WireError}, whose `cause` is a WireError again: the one recursive shape. */
  | { readonly $ref: "#/$defs/WireError" };

/** The TypeScript type of values that pass {@link schemaProblem} for `S`. */
export type Static<S> = S extends { const: infer C }
  ? C
  : S extends { $ref: "#/$defs/WireError" }
    ? WireError
    : S extends { anyOf: readonly (infer U)[] }
      ? U extends unknown
        ? Static<U>
        : never
      : S extends { type: "string"; enum: readonly (infer E)[] }
        ? E
        : S extends { type: "string" }
          ? string
          : S extends { type: "number" }
            ? number
            : S extends { type: "boolean" }
              ? boolean
              : S extends { type: "null" }
                ? null
                : S extends { type: "array"; items: infer I }
                  ? Static<I>[]
                  : S extends { type: "object"; properties: infer P; required: readonly (infer R)[] }
                    ? StaticObject<P, R & string>
                    : S extends { type: "object"; properties: infer P }
                      ? StaticObject<P, never>
                      : S extends { type: "object" }
                        ? Record<string, unknown>
                        : unknown;

type StaticObject<P, R extends string> = Flatten<
  { -readonly [K in keyof P & R]: Static<P[K]> } & { -readonly [K in Exclude<keyof P, R>]?: Static<P[K]> }
>;
type Flatten<T> = { [K in keyof T]: T[K] };

/** The schema of a {@link WireError} (how an error crosses AMQP). */
export const WIRE_ERROR_SCHEMA = {
  type: "object",
  properties: {
    code: { type: "string" },
    name: { type: "string" },
    message: { type: "string" },
    stack: { type: "string" },
    cause: { $ref: "#/$defs/WireError" },
  },
  required: ["code", "name", "message"],
} as const satisfies Schema;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Deepest `cause` chain checked; a deeper one is refused rather than walked forever. */
const MAX_DEPTH = 32;

/**
 * What is wrong with `value` under `schema`, as `<path> <problem>` (e.g.
 * `taskIds[2] is not a UUID`), or undefined when it passes. `path` names the
 * value itself.
 */
export function schemaProblem(schema: Schema, value: unknown, path: string, depth = 0): string | undefined {
  if (depth > MAX_DEPTH) return `${path} is nested too deeply`;
  if ("const" in schema) {
    return value === schema.const ? undefined : `${path} is not ${JSON.stringify(schema.const)}`;
  }
  if ("$ref" in schema) return schemaProblem(WIRE_ERROR_SCHEMA, value, path, depth + 1);
  if ("anyOf" in schema) {
    if (schema.anyOf.some((s) => schemaProblem(s, value, path, depth + 1) === undefined)) return undefined;
    return `${path} is not ${schema.anyOf.map(describe).join(" or ")}`;
  }
  switch (schema.type) {
    case "string":
      if (typeof value !== "string") return `${path} is not a string`;
      if (schema.format === "uuid" && !UUID.test(value)) return `${path} is not a UUID`;
      if (schema.enum && !schema.enum.includes(value)) {
        return `${path} ${JSON.stringify(value)} is not one of ${schema.enum.join(", ")}`;
      }
      return undefined;
    case "number":
      if (typeof value !== "number" || !Number.isFinite(value)) return `${path} is not a number`;
      if (schema.minimum !== undefined && value < schema.minimum) {
        return `${path} is not a number >= ${schema.minimum}`;
      }
      return undefined;
    case "boolean":
      return typeof value === "boolean" ? undefined : `${path} is not true or false`;
    case "null":
      return value === null ? undefined : `${path} is not null`;
    case "array": {
      if (!Array.isArray(value)) return `${path} is not a list`;
      for (const [index, item] of value.entries()) {
        const problem = schemaProblem(schema.items, item, `${path}[${index}]`, depth + 1);
        if (problem) return problem;
      }
      return undefined;
    }
    case "object": {
      if (typeof value !== "object" || value === null || Array.isArray(value)) return `${path} is not an object`;
      const record = value as Record<string, unknown>;
      for (const key of schema.required ?? []) {
        if (record[key] === undefined) return `${join(path, key)} is missing`;
      }
      for (const [key, property] of Object.entries(schema.properties ?? {})) {
        if (record[key] === undefined) continue;
        const problem = schemaProblem(property, record[key], join(path, key), depth + 1);
        if (problem) return problem;
      }
      return undefined;
    }
  }
}

/** `a.b`, or `b` at the top (the message itself has no name). */
function join(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

function describe(schema: Schema): string {
  if ("const" in schema) return JSON.stringify(schema.const);
  if ("$ref" in schema) return "a {code, name, message} error";
  if ("anyOf" in schema) return schema.anyOf.map(describe).join(" or ");
  switch (schema.type) {
    case "null":
      return "null";
    case "array":
      return "a list";
    case "object":
      return "an object";
    default:
      return `a ${schema.type}`;
  }
}
