/**
 * Values for the fields of a JSON schema: valid ones, wrong ones, and the
 * hostile ones a careless service chokes on (nasty and huge strings, invalid
 * UUIDs, JSON nested too deep, characters no store holds).
 */
import fc from "fast-check";
import { type JsonSchema, type OpenApiDocument, resolve } from "./openapi-document.js";

const HUGE = 200_000;

/** Strings a careless parser may choke on. */
export const nastyString = fc.oneof(
  fc.string(),
  fc.string({ unit: "binary", maxLength: 64 }),
  fc.constantFrom(
    "",
    " ",
    "null",
    "undefined",
    "NaN",
    "-1",
    "1e309",
    "__proto__",
    "constructor",
    "../../etc/passwd",
    "%00",
    "\u0000",
    "'; DROP TABLE tasks; --",
    "{{ 7*7 }}",
    `\${7*7}`,
    "\ud800",
    "😀".repeat(100),
  ),
  fc.integer({ min: 1_000, max: HUGE }).map((n) => "x".repeat(n)),
);

/** A string that is not a UUID. */
export const invalidUuid = fc
  .oneof(
    nastyString,
    fc.uuid().map((u) => u.slice(0, -1)),
    fc.uuid().map((u) => `${u}0`),
    fc.uuid().map((u) => u.replaceAll("-", "")),
    fc.uuid().map((u) => `{${u}}`),
    fc.uuid().map((u) => u.replace(/[0-9a-f]$/, "g")),
  )
  .filter((s) => s.length > 0 && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s));

/** JSON nested `depth` levels deep, as text (JSON.stringify itself would recurse). */
export const deepJson = fc
  .tuple(fc.integer({ min: 50, max: 20_000 }), fc.constantFrom("[", '{"a":'))
  .map(([depth, open]) => {
    const close = open === "[" ? "]" : "}";
    return `${open.repeat(depth)}1${close.repeat(depth)}`;
  });

/** The service refuses JSON nested deeper than this, the body being level 1 (hostile-input.ts). */
const MAX_JSON_DEPTH = 64;

/** JSON text nested deeper than the service accepts wherever it is put. */
const tooDeepJson = fc
  .tuple(fc.integer({ min: MAX_JSON_DEPTH + 1, max: 20_000 }), fc.constantFrom("[", '{"a":'))
  .map(([depth, open]) => `${open.repeat(depth)}1${(open === "[" ? "]" : "}").repeat(depth)}`);

/** The characters no store holds: NUL, and UTF-16 surrogates standing alone. */
const HOSTILE_CHARS = ["\u0000", "\ud800", "\udbff", "\udc00", "\udfff"] as const;

/**
 * An ordinary string with one hostile character in it. fast-check's default
 * strings are printable ASCII, so no neighbour pairs a surrogate up.
 */
export const hostileString = fc
  .tuple(fc.string({ maxLength: 20 }), fc.constantFrom(...HOSTILE_CHARS), fc.string({ maxLength: 20 }))
  .map(([before, bad, after]) => before + bad + after);

/** The hostile classes a field can be given. */
export type HostileClass = "text" | "key" | "deep";

/** A string standing for deep JSON in a value; {@link hostileBodyText} swaps the JSON text in. */
const DEEP_MARKER = "\u0001conduit-fuzz-deep\u0001";

/** A field where a hostile value can go, and the classes that fit it. */
export interface HostileSpot {
  path: (string | number)[];
  classes: HostileClass[];
}

/**
 * Every field of `schema`, optional ones and array items included: strings
 * take hostile text, free-form objects (and untyped values) hostile keys and
 * nested hostile text, and every field deep JSON.
 */
export function hostileSpots(doc: OpenApiDocument, raw: JsonSchema, prefix: (string | number)[] = []): HostileSpot[] {
  const schema = resolve(doc, raw);
  const types = typeOf(schema);
  const classes: HostileClass[] = [];
  if (types.includes("string")) classes.push("text");
  const freeForm = types.length === 0 || (types.includes("object") && schema.additionalProperties !== false);
  if (freeForm) classes.push("key", "text");
  const spots: HostileSpot[] = prefix.length > 0 ? [{ path: prefix, classes: [...new Set(classes), "deep"] }] : [];
  if (types.includes("object") && schema.properties) {
    for (const [name, p] of Object.entries(schema.properties)) spots.push(...hostileSpots(doc, p, [...prefix, name]));
  }
  if (types.includes("array") && schema.items) spots.push(...hostileSpots(doc, schema.items, [...prefix, 0]));
  return spots;
}

/** A hostile value of one class, for a field of the given schema. */
function hostileValue(doc: OpenApiDocument, raw: JsonSchema, kind: HostileClass): fc.Arbitrary<unknown> {
  const schema = resolve(doc, raw);
  switch (kind) {
    case "deep":
      return fc.constant(DEEP_MARKER);
    case "key":
      return fc.tuple(hostileString, fc.jsonValue({ maxDepth: 1 })).map(([key, value]) => ({ ok: 1, [key]: value }));
    case "text":
      return typeOf(schema).includes("string")
        ? hostileString
        : fc.oneof(
            hostileString.map((text) => ({ note: text })),
            hostileString.map((text) => ({ list: ["ok", text] })),
          );
  }
}

/**
 * A request body: a complete valid body with one field made hostile, as JSON
 * text (deep JSON is spliced in as text, which JSON.stringify could not write).
 */
export function hostileBodyText(
  doc: OpenApiDocument,
  schema: JsonSchema,
  spot: HostileSpot,
  kind: HostileClass,
): fc.Arbitrary<string> {
  return fc
    .tuple(validValue(doc, schema, true), hostileValue(doc, schemaAt(doc, schema, spot.path), kind), tooDeepJson)
    .map(([base, bad, deep]) =>
      JSON.stringify(setAt(base, spot.path, bad)).replace(JSON.stringify(DEEP_MARKER), () => deep),
    );
}

export function typeOf(schema: JsonSchema): string[] {
  if (schema.type === undefined) return [];
  return Array.isArray(schema.type) ? schema.type : [schema.type];
}

/**
 * A value that fits `schema` (strings, numbers and arrays kept small). With
 * `complete`, every optional property is present, every array holds an item
 * and `null` is never chosen where something else may be: a base value in
 * which every field the schema names exists.
 */
export function validValue(doc: OpenApiDocument, raw: JsonSchema, complete = false): fc.Arbitrary<unknown> {
  const schema = resolve(doc, raw);
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const variants = schema.anyOf ?? schema.oneOf;
  if (variants) return fc.oneof(...variants.map((v) => validValue(doc, v, complete)));
  let types = typeOf(schema);
  if (complete && types.length > 1) types = types.filter((t) => t !== "null");
  if (types.length > 1) return fc.oneof(...types.map((t) => validValue(doc, { ...schema, type: t }, complete)));
  switch (types[0]) {
    case "string":
      if (schema.format === "uuid") return fc.uuid();
      return fc.string({ minLength: schema.minLength ?? 0, maxLength: Math.min(schema.maxLength ?? 40, 40) });
    case "integer":
      return fc.integer({ min: schema.minimum ?? 0, max: Math.min(schema.maximum ?? 1_000, 1_000) });
    case "number":
      return fc.double({ min: schema.minimum ?? 0, max: schema.maximum ?? 1_000, noNaN: true });
    case "boolean":
      return fc.boolean();
    case "null":
      return fc.constant(null);
    case "array": {
      const minLength = Math.max(schema.minItems ?? 0, complete ? 1 : 0);
      return fc.array(validValue(doc, schema.items ?? {}, complete), {
        minLength,
        maxLength: Math.max(minLength, 3),
      });
    }
    case "object": {
      const properties = schema.properties ?? {};
      const required = new Set(schema.required ?? []);
      const record: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [name, p] of Object.entries(properties)) record[name] = validValue(doc, p, complete);
      return fc.record(record, {
        requiredKeys: Object.keys(properties).filter((k) => complete || required.has(k)),
      });
    }
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

/**
 * A value whose JSON type `schema` does not allow, or a string breaking its
 * format or length. Fastify's Ajv coerces scalars (`1` to `"1"`, `null` to
 * `""`, `["x"]` to `"x"`), so only values no coercion can rescue count as wrong.
 */
function wrongValue(doc: OpenApiDocument, raw: JsonSchema): fc.Arbitrary<unknown> | undefined {
  const schema = resolve(doc, raw);
  if (schema.anyOf || schema.oneOf || schema.const !== undefined || schema.enum) return undefined;
  const types = new Set(typeOf(schema));
  if (types.size === 0) return undefined;
  const others: fc.Arbitrary<unknown>[] = [];
  if (!types.has("array")) {
    others.push(fc.array(fc.jsonValue({ maxDepth: 1 }), { minLength: 2, maxLength: 4 }));
  }
  if (!types.has("object")) {
    others.push(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 1 }), { minKeys: 1, maxKeys: 3 }));
  }
  const numeric = types.has("integer") || types.has("number");
  if (numeric || types.has("boolean")) {
    others.push(
      nastyString.filter(
        (v) => v.length > 0 && !["true", "false"].includes(v) && (v.trim() === "" || Number.isNaN(Number(v))),
      ),
    );
  }
  if (types.has("integer") && !types.has("number")) others.push(fc.constantFrom(0.5, -1.25));
  if (types.has("string") && schema.format === "uuid") others.push(invalidUuid);
  if (types.has("string") && schema.maxLength !== undefined) {
    others.push(fc.integer({ min: schema.maxLength + 1, max: HUGE }).map((n) => "y".repeat(n)));
  }
  if (types.has("string") && schema.minLength) others.push(fc.constant(""));
  return others.length > 0 ? fc.oneof(...others) : undefined;
}

/** Paths (property names, array index 0) to every spot in `schema` where {@link wrongValue} can go. */
function mutablePaths(doc: OpenApiDocument, raw: JsonSchema, prefix: (string | number)[] = []): (string | number)[][] {
  const schema = resolve(doc, raw);
  const here = wrongValue(doc, schema) ? [prefix] : [];
  const types = typeOf(schema);
  if (types.includes("object") && schema.properties) {
    const required = new Set(schema.required ?? []);
    // Only required properties are sure to be present in the valid base value.
    return here.concat(
      Object.entries(schema.properties)
        .filter(([name]) => required.has(name))
        .flatMap(([name, p]) => mutablePaths(doc, p, [...prefix, name])),
    );
  }
  if (types.includes("array") && schema.items && (schema.minItems ?? 0) > 0) {
    return here.concat(mutablePaths(doc, schema.items, [...prefix, 0]));
  }
  return here;
}

function schemaAt(doc: OpenApiDocument, raw: JsonSchema, path: (string | number)[]): JsonSchema {
  let schema = resolve(doc, raw);
  for (const step of path) {
    schema = resolve(doc, typeof step === "number" ? (schema.items ?? {}) : (schema.properties?.[step] ?? {}));
  }
  return schema;
}

function setAt(value: unknown, path: (string | number)[], replacement: unknown): unknown {
  if (path.length === 0) return replacement;
  const [step, ...rest] = path;
  const copy = (Array.isArray(value) ? [...value] : typeof step === "number" ? [] : { ...(value as object) }) as Record<
    string | number,
    unknown
  >;
  copy[step] = setAt(copy[step], rest, replacement);
  return copy;
}

/** Invalid bodies: one field of a valid body given a wrong value, or a required field dropped. */
export function wrongBody(doc: OpenApiDocument, schema: JsonSchema): fc.Arbitrary<{ body: unknown; what: string }> {
  const paths = mutablePaths(doc, schema);
  const resolved = resolve(doc, schema);
  const options: fc.Arbitrary<{ body: unknown; what: string }>[] = paths.map((path) =>
    fc
      .tuple(validValue(doc, schema), wrongValue(doc, schemaAt(doc, schema, path)) as fc.Arbitrary<unknown>)
      .map(([base, wrong]) => ({ body: setAt(base, path, wrong), what: `wrong value at /${path.join("/")}` })),
  );
  for (const name of resolved.required ?? []) {
    options.push(
      validValue(doc, schema).map((base) => {
        const copy = { ...(base as Record<string, unknown>) };
        delete copy[name];
        return { body: copy, what: `missing ${name}` };
      }),
    );
  }
  return fc.oneof(...options);
}
