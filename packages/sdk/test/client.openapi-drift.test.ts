/**
 * The Client's types are @conduit/protocol's, derived from the route
 * definitions in API_ROUTES. This starts the built service and checks the
 * /openapi.json it serves against those definitions, route by route: a route
 * the service answers without a definition, a definition the service does not
 * serve, or a parameter, body or answer that differs fails here.
 */
import { API_ROUTES, API_SHARED_SCHEMAS, type ApiRoute } from "@conduit/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type InProcessService, startInProcessService } from "./stack.helpers.js";

interface Parameter {
  in: string;
  name: string;
  required?: boolean;
  description?: string;
  example?: unknown;
  schema: unknown;
}
interface Operation {
  summary?: string;
  tags?: string[];
  security?: unknown[];
  parameters?: Parameter[];
  requestBody?: { content: Record<string, { schema: unknown }> };
  responses: Record<string, { content?: Record<string, { schema: unknown }> }>;
}
interface OpenApiDocument {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown> };
}

let document: OpenApiDocument;
let running: InProcessService | undefined;

beforeAll(async () => {
  running = await startInProcessService();
  const response = await fetch(`${running.service.url}/openapi.json`);
  expect(response.status).toBe(200);
  document = (await response.json()) as OpenApiDocument;
});

afterAll(async () => {
  await running?.stop();
});

/** A definition as JSON (TypeBox's symbol keys dropped), its `$ref`s written as OpenAPI writes them. */
function asServed(schema: unknown): unknown {
  return JSON.parse(JSON.stringify(schema), (key, value) =>
    key === "$ref" && typeof value === "string" ? `#/components/schemas/${value}` : value,
  );
}

/** `/v1/tasks/:task_id` → `/v1/tasks/{task_id}`. */
function openApiPath(url: string): string {
  return url.replace(/:(\w+)/g, "{$1}");
}

/** A definition's parameters as @fastify/swagger lists them (description and example beside the schema). */
function expectedParameters(route: ApiRoute): Parameter[] {
  const list: Parameter[] = [];
  for (const [where, object] of [
    ["query", route.querystring],
    ["path", route.params],
  ] as const) {
    if (!object) continue;
    const required = new Set(object.required ?? []);
    for (const [name, property] of Object.entries(asServed(object.properties) as Record<string, object>)) {
      const { description, examples, ...schema } = property as { description?: string; examples?: unknown[] };
      list.push({
        in: where,
        name,
        required: where === "path" || required.has(name),
        ...(description === undefined ? {} : { description }),
        ...(examples === undefined ? {} : { example: examples[0] }),
        schema,
      });
    }
  }
  return list;
}

/** The parts of a served operation that a definition decides. */
function servedView(op: Operation) {
  return {
    summary: op.summary,
    tags: op.tags,
    public: Array.isArray(op.security) && op.security.length === 0,
    parameters: op.parameters ?? [],
    body: op.requestBody?.content["application/json"]?.schema,
    responses: Object.fromEntries(
      Object.entries(op.responses).map(([status, answer]) => [status, answer.content?.["application/json"]?.schema]),
    ),
  };
}

function definedView(route: ApiRoute) {
  return {
    summary: route.summary,
    tags: [...route.tags],
    public: route.public === true,
    parameters: expectedParameters(route),
    body: route.body === undefined ? undefined : asServed(route.body),
    responses: Object.fromEntries(
      Object.entries(route.response).map(([status, schema]) => [status.toUpperCase(), asServed(schema)]),
    ),
  };
}

describe("the service's /openapi.json and protocol's API_ROUTES", () => {
  it("list the same routes", () => {
    const served = Object.entries(document.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`),
    );
    const defined = Object.values(API_ROUTES).map((r) => `${r.method} ${openApiPath(r.url)}`);
    expect(served.sort()).toEqual(defined.sort());
  });

  it.each(Object.entries(API_ROUTES))("agree on %s", (_name, route: ApiRoute) => {
    const op = document.paths[openApiPath(route.url)]?.[route.method.toLowerCase()];
    expect(op, `${route.method} ${route.url} is not in /openapi.json`).toBeDefined();
    expect(servedView(op)).toEqual(definedView(route));
  });

  it("agree on the shared shapes (components.schemas)", () => {
    const defined = Object.fromEntries(
      API_SHARED_SCHEMAS.map((schema) => {
        const { $id, ...rest } = asServed(schema) as { $id: string };
        return [$id, rest];
      }),
    );
    expect(document.components.schemas).toEqual(defined);
  });

  it("would notice a drift: a changed definition no longer matches what is served", () => {
    const route = API_ROUTES.registerFunction;
    const changed = { ...route, summary: `${route.summary} (changed)` };
    const op = document.paths[openApiPath(route.url)].post;
    expect(servedView(op)).not.toEqual(definedView(changed));
  });
});
