/**
 * fast-check arbitraries derived from the service's OpenAPI document: one
 * generator of hostile requests per route. Each generated request says
 * whether it is certainly invalid (`invalid: true`, so the service must
 * answer 4xx) or only odd (any status below 500 will do).
 */
import fc from "fast-check";

import type { FuzzRequest, OpenApiDocument, Parameter, Route } from "./openapi-document.js";
import {
  deepJson,
  hostileBodyText,
  hostileSpots,
  hostileString,
  invalidUuid,
  nastyString,
  typeOf,
  validValue,
  wrongBody,
} from "./schema-values.js";

export type { FuzzRequest, JsonSchema, OpenApiDocument, Route } from "./openapi-document.js";
export { routesOf } from "./openapi-document.js";
export {
  type HostileClass,
  type HostileSpot,
  hostileBodyText,
  hostileSpots,
  hostileString,
  validValue,
} from "./schema-values.js";

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
