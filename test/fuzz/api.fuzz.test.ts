/**
 * Every route of the REST API under hostile input generated from the
 * service's own /openapi.json: wrong types, huge strings, deep JSON, invalid
 * UUIDs, broken or missing credentials, wrong content types, and text no store
 * can hold (NUL, unpaired surrogates, JSON nested over 64 levels) in every
 * field, path parameter and query. The service
 * (in-process, PGlite, a RabbitMQ vhost of its own) must never answer 5xx,
 * must keep answering /healthz, and must answer every certainly invalid
 * request with a 4xx carrying `{statusCode, code, error, message}`.
 *
 * `npm run fuzz` sets FUZZ_RUNS=1000 (cases per route); inside `npm test`
 * fewer run per route so the file stays well under a minute.
 */
import { randomUUID } from "node:crypto";
import type { RunningService } from "@conduit/service";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_ROUTES } from "../../packages/service/test/helpers/api-route-list.js";
import { type FuzzService, startFuzzService } from "./fuzz-service.js";
import {
  type FuzzRequest,
  hostileBodyText,
  hostileSpots,
  type OpenApiDocument,
  type Route,
  requestsFor,
  routesOf,
} from "./openapi-arbitraries.js";

const RUNS = Number(process.env.FUZZ_RUNS ?? 30);

/** Each route is a test of its own (the document is only fetched in `beforeAll`); the first test fails when the document drifts. */
const ROUTES = API_ROUTES;

let service: RunningService;
let doc: OpenApiDocument;
let userToken: string;
let fuzzService: FuzzService;

beforeAll(async () => {
  fuzzService = await startFuzzService("fuzz", { maxRequestBytes: 1_000_000, maxTaskBytes: 100_000 });
  service = fuzzService.service;
  userToken = (await service.createIdentity("fuzz@example.org", { name: "Fuzz" })).token;
  doc = (await (await fetch(`${service.url}/openapi.json`)).json()) as OpenApiDocument;
});

afterAll(async () => {
  await fuzzService?.dispose();
});

interface Answer {
  status: number;
  text: string;
}

async function send(req: FuzzRequest): Promise<Answer> {
  const response = await fetch(`${service.url}${req.url}`, {
    method: req.method,
    headers: req.headers,
    body: req.body,
  });
  return { status: response.status, text: await response.text() };
}

function describeRequest(req: FuzzRequest, answer: Answer): string {
  const body = req.body === undefined ? "" : ` body ${JSON.stringify(req.body.slice(0, 200))}`;
  return `${req.mutation}: ${req.method} ${req.url.slice(0, 200)}${body} -> ${answer.status} ${answer.text.slice(0, 300)}`;
}

/** The checks every answer must pass; returns a sentence for the first one that fails. */
function problemWith(req: FuzzRequest, answer: Answer): string | undefined {
  if (answer.status >= 500) return "a 5xx";
  if (answer.status < 400) return req.invalid ? "success for an invalid request" : undefined;
  let body: unknown;
  try {
    body = JSON.parse(answer.text);
  } catch {
    return "an error whose body is not JSON";
  }
  const e = body as Record<string, unknown>;
  if (e.statusCode !== answer.status) return "an error body whose statusCode is not the HTTP status";
  for (const field of ["code", "error", "message"]) {
    if (typeof e[field] !== "string" || (e[field] as string).length === 0) return `an error body without ${field}`;
  }
  return undefined;
}

async function healthy(): Promise<boolean> {
  const response = await fetch(`${service.url}/healthz`).catch(() => undefined);
  return response?.status === 200;
}

describe("REST API under hostile input, generated from /openapi.json", () => {
  it("fuzzes every route of the document", () => {
    const routes = routesOf(doc).map((r) => `${r.method} ${r.path}`);
    expect([...routes].sort()).toEqual([...ROUTES].sort());
  });

  // Found by this fuzz: Node's HTTP parser answered these itself, without `code`.
  it("a URL over the 16 KiB header limit gets 431 with the API's error body", async () => {
    const req: FuzzRequest = {
      method: "GET",
      url: `/v1/task_groups?q=${"x".repeat(20_000)}`,
      headers: { authorization: `Bearer ${userToken}` },
      mutation: "huge URL",
      invalid: true,
    };
    const answer = await send(req);
    expect(answer.status).toBe(431);
    expect(problemWith(req, answer)).toBeUndefined();
    expect(await healthy()).toBe(true);
  });

  // The random cases above may miss a field; here every field of every body gets each class that fits it.
  it("every field of every request body: NUL, a lone surrogate or over-deep JSON gets 400 naming that field", async () => {
    let tried = 0;
    for (const route of routesOf(doc)) {
      const schema = route.operation.requestBody?.content["application/json"]?.schema;
      if (!schema) continue;
      const path = route.path.replace("{username}", "fuzz@example.org").replace(/\{\w+\}/g, () => randomUUID());
      for (const spot of hostileSpots(doc, schema)) {
        for (const kind of spot.classes) {
          const [body] = fc.sample(hostileBodyText(doc, schema, spot, kind), { numRuns: 1, seed: tried });
          const req: FuzzRequest = {
            method: route.method,
            url: path,
            headers: { authorization: `Bearer ${service.adminToken}`, "content-type": "application/json" },
            body,
            mutation: `${kind} at /${spot.path.join("/")}`,
            invalid: true,
          };
          const answer = await send(req);
          const where = describeRequest(req, answer);
          expect(answer.status, where).toBe(400);
          const error = JSON.parse(answer.text) as { code: string; message: string };
          expect(error.code, where).toBe("INVALID_TEXT");
          // The field named is the one made hostile (or, for deep JSON, starts with it).
          const field = spot.path.map((step) => (typeof step === "number" ? `[${step}]` : `.${step}`)).join("");
          expect(error.message, where).toContain(`body${field}`);
          tried++;
        }
      }
    }
    // Every body route with its string and object fields: dozens of spots.
    expect(tried).toBeGreaterThan(60);
    expect(await healthy()).toBe(true);
  });

  it.each(ROUTES)("%s: never a 5xx, invalid requests get a 4xx with a JSON error body", async (name) => {
    const route = routesOf(doc).find((r: Route) => `${r.method} ${r.path}` === name);
    expect(route, `${name} is no longer in /openapi.json`).toBeDefined();
    const arbitrary = requestsFor(doc, route as Route, { admin: service.adminToken, user: userToken });
    const details = await fc.check(
      fc.asyncProperty(arbitrary, async (req) => {
        const answer = await send(req);
        const problem = problemWith(req, answer);
        if (problem) throw new Error(`${problem}: ${describeRequest(req, answer)}`);
      }),
      { numRuns: RUNS },
    );
    // fast-check's own report prints the whole counterexample, huge strings included.
    if (details.failed) throw new Error(`${String(details.errorInstance)} (seed ${details.seed})`);
    expect(await healthy()).toBe(true);
  });
});
