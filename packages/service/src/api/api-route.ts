/**
 * Registers a route from its definition in @conduit/protocol (API_ROUTES):
 * method, path, the JSON Schemas Fastify validates and serializes with (and
 * @fastify/swagger serves as /openapi.json), and whether it needs a token. The
 * handler's request and reply types are derived from the same definition.
 */
import type { ApiRoute, RouteBody, RouteParams, RouteQuery, RouteReply } from "@conduit/protocol";
import type {
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  FastifySchema,
  RouteHandlerMethod,
  RouteShorthandOptions,
} from "fastify";

/** The request a route's handler gets: params, query and body typed by its definition. */
export type ApiRequest<R extends ApiRoute> = FastifyRequest<{
  Params: RouteParams<R>;
  Querystring: RouteQuery<R>;
  Body: RouteBody<R>;
}>;

/** Route-level hooks (they run after the global ones of server.ts). */
export type ApiRouteHooks = Pick<RouteShorthandOptions, "onRequest" | "preValidation">;

/** The Fastify schema of a route definition; a public route opts out of the bearer token in OpenAPI. */
export function fastifySchema(route: ApiRoute): FastifySchema {
  return {
    summary: route.summary,
    tags: [...route.tags],
    ...(route.public ? { security: [] } : {}),
    ...(route.params ? { params: route.params } : {}),
    ...(route.querystring ? { querystring: route.querystring } : {}),
    ...(route.body ? { body: route.body } : {}),
    response: route.response,
  };
}

export function addRoute<R extends ApiRoute>(
  app: FastifyInstance,
  route: R,
  hooks: ApiRouteHooks,
  // NoInfer: R comes from the definition alone, so literal answers (`deleted: true`) keep their type.
  handler: (request: ApiRequest<NoInfer<R>>, reply: FastifyReply) => Promise<RouteReply<NoInfer<R>>>,
): void {
  app.route({
    method: route.method,
    url: route.url,
    schema: fastifySchema(route),
    config: { public: route.public === true },
    ...hooks,
    handler: handler as RouteHandlerMethod,
  });
}
