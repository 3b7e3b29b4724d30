/**
 * fast-check arbitraries derived from the service's OpenAPI document: one
 * generator of hostile requests per route. Each generated request says
 * whether it is certainly invalid (`invalid: true`, so the service must
 * answer 4xx) or only odd (any status below 500 will do).
 */
import fc from "fast-check";

export interface JsonSchema {
  type?: string | string[];
  format?: string;
  enum?: unknown[];
  const?: unknown;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  $ref?: string;
}

interface Parameter {
  name: string;
  in: "path" | "query" | "header";
  required?: boolean;
  schema: JsonSchema;
}

interface Operation {
  parameters?: Parameter[];
  requestBody?: { required?: boolean; content: Record<string, { schema: JsonSchema }> };
  security?: unknown[];
}

export interface OpenApiDocument {
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, JsonSchema> };
}

export interface Route {
  method: string;
  path: string;
  operation: Operation;
  /** Answered without a token (an empty `security` list). */
  public: boolean;
}

export interface FuzzRequest {
  method: string;
  /** Path and query, already encoded. */
  url: string;
  headers: Record<string, string>;
  body?: string;
  /** What was broken, for the failure message. */
  mutation: string;
  /** True when the request is certainly wrong: the answer must be a 4xx. */
  invalid: boolean;
}

export function routesOf(doc: OpenApiDocument): Route[] {
  return Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, operation]) => ({
      method: method.toUpperCase(),
      path,
      operation,
      public: Array.isArray(operation.security) && operation.security.length === 0,
    })),
  );
}

function resolve(doc: OpenApiDocument, schema: JsonSchema): JsonSchema {
  if (!schema.$ref) return schema;
  const name = schema.$ref.replace(/^#\/components\/schemas\//, "");
  const target = doc.components?.schemas?.[name];
  if (!target) throw new Error(`The OpenAPI document has no schema ${schema.$ref}.`);
  return resolve(doc, target);
}

const HUGE = 200_000;

/** Strings a careless parser may choke on. */
const nastyString = fc.oneof(
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

function typeOf(schema: JsonSchema): string[] {
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
function wrongBody(doc: OpenApiDocument, schema: JsonSchema): fc.Arbitrary<{ body: unknown; what: string }> {
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

export interface Tokens {
  admin: string;
  user: string;
}

const AUTH_INVALID = [
  "missing",
  "Bearer <garbage>",
  "not bearer",
  "Bearer <empty>",
  "Bearer <truncated>",
  "Bearer <case>",
] as const;

function brokenAuth(tokens: Tokens): fc.Arbitrary<{ header?: string; what: string }> {
  const printable = fc.string({ minLength: 1, maxLength: 300 }).map((s) => s.replace(/[^\x21-\x7e]/g, "a"));
  return fc.oneof(
    fc.constant({ what: AUTH_INVALID[0] }),
    printable.map((s) => ({ header: `Bearer ${s}`, what: AUTH_INVALID[1] })),
    fc
      .constantFrom("Basic", "Token", "bearer:", "")
      .chain((scheme) => printable.map((s) => ({ header: `${scheme} ${s}`.trim(), what: AUTH_INVALID[2] }))),
    fc.constant({ header: "Bearer ", what: AUTH_INVALID[3] }),
    fc
      .integer({ min: 1, max: tokens.admin.length - 1 })
      .map((n) => ({ header: `Bearer ${tokens.admin.slice(0, n)}`, what: AUTH_INVALID[4] })),
    fc.constant({ header: `Bearer ${tokens.admin.toUpperCase()}x`, what: AUTH_INVALID[5] }),
  );
}

/** encodeURIComponent, which throws on lone surrogates; those become U+FFFD. */
function encode(s: string): string {
  return encodeURIComponent(s.replace(/[\ud800-\udfff]/g, "\ufffd"));
}

/**
 * Percent-encoding that keeps lone surrogates, as the three bytes UTF-8 would
 * give them (WTF-8): no valid UTF-8 decodes to those, so the server must cope.
 */
function encodeLoneSurrogates(s: string): string {
  return [...s]
    .map((c) => {
      const unit = c.charCodeAt(0);
      if (c.length > 1 || unit < 0xd800 || unit > 0xdfff) return encodeURIComponent(c);
      return [0xe0 | (unit >> 12), 0x80 | ((unit >> 6) & 0x3f), 0x80 | (unit & 0x3f)]
        .map((b) => `%${b.toString(16).toUpperCase()}`)
        .join("");
    })
    .join("");
}

function pathWith(route: Route, values: Record<string, string>): string {
  return route.path.replace(/\{(\w+)\}/g, (_, name: string) => encode(values[name] ?? ""));
}

function parameters(route: Route, where: Parameter["in"]): Parameter[] {
  return (route.operation.parameters ?? []).filter((p) => p.in === where);
}

/** Fills every path parameter with a valid value (unknown UUIDs, plausible usernames). */
function validPathValues(doc: OpenApiDocument, route: Route): fc.Arbitrary<Record<string, string>> {
  const record: Record<string, fc.Arbitrary<string>> = {};
  for (const p of parameters(route, "path")) {
    record[p.name] = p.schema.format === "uuid" ? fc.uuid() : (validValue(doc, p.schema) as fc.Arbitrary<string>);
  }
  return fc.record(record);
}

function jsonBody(value: unknown): string {
  return JSON.stringify(value);
}

/** Every kind of hostile request for one route. */
export function requestsFor(doc: OpenApiDocument, route: Route, tokens: Tokens): fc.Arbitrary<FuzzRequest> {
  const bodySchema = route.operation.requestBody?.content["application/json"]?.schema;
  const hasBody = bodySchema !== undefined;
  const canSendBody = route.method !== "GET" && route.method !== "HEAD";
  const pathParams = parameters(route, "path");
  const queryParams = parameters(route, "query");
  const good = (token: string) => ({ authorization: `Bearer ${token}` });
  const anyToken = fc.constantFrom(tokens.admin, tokens.user);
  const validBody = hasBody ? validValue(doc, bodySchema) : fc.constant(undefined);

  const request = (
    path: Record<string, string>,
    headers: Record<string, string>,
    body: string | undefined,
    mutation: string,
    invalid: boolean,
    query = "",
  ): FuzzRequest => {
    const h = { ...headers };
    if (body !== undefined && canSendBody && h["content-type"] === undefined) h["content-type"] = "application/json";
    return {
      method: route.method,
      url: pathWith(route, path) + query,
      headers: h,
      body: canSendBody ? body : undefined,
      mutation,
      invalid,
    };
  };

  const kinds: fc.Arbitrary<FuzzRequest>[] = [];

  // Broken or missing credentials, with an otherwise fine request.
  if (!route.public) {
    kinds.push(
      fc
        .tuple(validPathValues(doc, route), brokenAuth(tokens), validBody)
        .map(([path, auth, body]) =>
          request(
            path,
            auth.header === undefined ? {} : { authorization: auth.header },
            body === undefined ? undefined : jsonBody(body),
            `auth: ${auth.what}`,
            true,
          ),
        ),
    );
  }

  // Path parameters that break their format.
  for (const p of pathParams.filter((q) => q.schema.format === "uuid")) {
    kinds.push(
      fc
        .tuple(validPathValues(doc, route), invalidUuid, anyToken, validBody)
        .map(([path, bad, token, body]) =>
          request(
            { ...path, [p.name]: bad },
            good(token),
            body === undefined ? undefined : jsonBody(body),
            `path ${p.name} not a UUID`,
            true,
          ),
        ),
    );
  }
  // Any path parameter: odd but possibly valid values (unknown ids, strange usernames).
  if (pathParams.length > 0) {
    kinds.push(
      fc
        .tuple(
          fc.record(Object.fromEntries(pathParams.map((p) => [p.name, fc.oneof(fc.uuid(), nastyString)]))),
          anyToken,
          validBody,
        )
        .map(([path, token, body]) =>
          request(path, good(token), body === undefined ? undefined : jsonBody(body), "odd path values", false),
        ),
    );
  }

  // Query parameters of the wrong type, and unknown ones.
  for (const p of queryParams) {
    const wrong = typeOf(p.schema).includes("boolean")
      ? nastyString.filter((s) => !["true", "false", "1", "0", ""].includes(s.trim().toLowerCase()))
      : nastyString;
    kinds.push(
      fc
        .tuple(validPathValues(doc, route), wrong, anyToken)
        .map(([path, bad, token]) =>
          request(
            path,
            good(token),
            undefined,
            `query ${p.name} wrong type`,
            typeOf(p.schema).includes("boolean"),
            `?${p.name}=${encode(bad)}`,
          ),
        ),
    );
  }
  kinds.push(
    fc
      .tuple(validPathValues(doc, route), fc.string({ maxLength: 20 }), nastyString, anyToken)
      .map(([path, key, value, token]) =>
        request(path, good(token), undefined, "unknown query", false, `?${encode(key)}=${encode(value)}`),
      ),
  );

  // Hostile text in a path parameter or the query: NUL gets 400; a lone
  // surrogate can only arrive as bytes that are not UTF-8, any 4xx will do.
  const withNul = hostileString.map((text) => text.replace(/[\ud800-\udfff]/g, "\u0000"));
  for (const p of pathParams) {
    kinds.push(
      fc
        .tuple(validPathValues(doc, route), withNul, anyToken, validBody)
        .map(([path, bad, token, body]) =>
          request(
            { ...path, [p.name]: bad },
            good(token),
            body === undefined ? undefined : jsonBody(body),
            `path ${p.name}: NUL`,
            true,
          ),
        ),
    );
  }
  const queryKey = fc.oneof(fc.constantFrom(...queryParams.map((p) => p.name), "x"), fc.string({ maxLength: 10 }));
  kinds.push(
    fc
      .tuple(validPathValues(doc, route), queryKey, withNul, anyToken)
      .map(([path, key, bad, token]) =>
        request(path, good(token), undefined, "query: NUL", true, `?${encode(key)}=${encode(bad)}`),
      ),
    fc
      .tuple(validPathValues(doc, route), queryKey, hostileString, anyToken)
      .map(([path, key, bad, token]) =>
        request(
          path,
          good(token),
          undefined,
          "query: lone surrogate bytes",
          false,
          `?${encode(key)}=${encodeLoneSurrogates(bad)}`,
        ),
      ),
  );

  if (canSendBody) {
    if (hasBody) {
      // NUL, a lone surrogate or deep JSON in one field of an otherwise complete body.
      const spots = hostileSpots(doc, bodySchema).flatMap((spot) => spot.classes.map((kind) => ({ spot, kind })));
      kinds.push(
        fc
          .tuple(
            validPathValues(doc, route),
            fc.constantFrom(...spots).chain(({ spot, kind }) =>
              hostileBodyText(doc, bodySchema, spot, kind).map((text) => ({
                text,
                what: `${kind} at /${spot.path.join("/")}`,
              })),
            ),
            anyToken,
          )
          .map(([path, b, token]) => request(path, good(token), b.text, `hostile body: ${b.what}`, true)),
      );
      kinds.push(
        fc
          .tuple(validPathValues(doc, route), wrongBody(doc, bodySchema), anyToken)
          .map(([path, b, token]) => request(path, good(token), jsonBody(b.body), `body: ${b.what}`, true)),
        fc
          .tuple(validPathValues(doc, route), fc.jsonValue({ maxDepth: 4 }), anyToken)
          .map(([path, b, token]) => request(path, good(token), jsonBody(b), "body: arbitrary JSON", false)),
        fc
          .tuple(validPathValues(doc, route), anyToken)
          .map(([path, token]) =>
            request(path, { ...good(token), "content-type": "application/json" }, "", "body: empty", true),
          ),
        fc
          .tuple(validPathValues(doc, route), fc.constantFrom(...NOT_JSON), anyToken)
          .map(([path, text, token]) => request(path, good(token), text, "body: not JSON", true)),
      );
    }
    // Deep JSON: rejected (or, where the route ignores bodies, ignored), never a stack overflow.
    kinds.push(
      fc
        .tuple(validPathValues(doc, route), deepJson, anyToken)
        .map(([path, text, token]) => request(path, good(token), text, "body: deep JSON", hasBody)),
    );
    // A valid body under the wrong content type.
    kinds.push(
      fc
        .tuple(validPathValues(doc, route), validBody, fc.constantFrom(...CONTENT_TYPES), anyToken)
        .map(([path, body, type, token]) =>
          request(
            path,
            { ...good(token), "content-type": type },
            body === undefined ? "x=1" : jsonBody(body),
            `content-type ${type}`,
            hasBody,
          ),
        ),
    );
    // Huge body, well under the request limit but far over every field's maxLength.
    kinds.push(
      fc
        .tuple(validPathValues(doc, route), fc.integer({ min: 100_000, max: 900_000 }), anyToken)
        .map(([path, n, token]) =>
          request(path, good(token), JSON.stringify({ x: "z".repeat(n) }), "body: huge unknown field", hasBody),
        ),
    );
  }
  return fc.oneof(...kinds);
}

const NOT_JSON = ["{", "}", "[1,", '{"a":1,}', "undefined", "NaN", "{'a':1}", '"\\x"', "\u0000", "<xml/>", "1 2"];

const CONTENT_TYPES = [
  "text/plain",
  "application/xml",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "application/octet-stream",
  "application/jsonx",
  "json",
  ";;;",
];
