/**
 * The Fastify application: OpenAPI from the route schemas, one error shape for
 * every failure, and the token check in `onRequest` — before the body is even
 * read — so a request without a valid token gets 401 whatever its body.
 */

import { randomUUID } from "node:crypto";
import { API_SHARED_SCHEMAS } from "@conduit/protocol";
import swagger from "@fastify/swagger";
import Fastify, { type FastifyInstance, LogController } from "fastify";
import type { Authenticator } from "../auth/authenticator.js";
import { ServiceError } from "../errors.js";
import type { ApiContext } from "./api-context.js";
import { clientErrorReply, toApiError } from "./error-reply.js";
import { checkRequestText } from "./hostile-input.js";
import { adminRoutes } from "./routes/admin-routes.js";
import { clientRoutes } from "./routes/client-routes.js";
import { endpointRoutes } from "./routes/endpoint-routes.js";
import { functionRoutes } from "./routes/function-routes.js";
import { identityRoutes } from "./routes/identity-routes.js";
import { policyRoutes } from "./routes/policy-routes.js";
import { serviceRoutes } from "./routes/service-routes.js";
import { taskGroupRoutes } from "./routes/task-group-routes.js";
import { taskRoutes } from "./routes/task-routes.js";

export interface AppOptions {
  logLevel: string;
  /** Largest request body, in bytes (Fastify's bodyLimit). */
  bodyLimit: number;
  version: string;
}

/** A request id taken from X-Request-Id: short and plain, as it goes into log lines and broker messages. */
const REQUEST_ID = /^[\w.:-]{1,100}$/;

/** The application with its logger, error handling and OpenAPI; routes come with {@link installRoutes}. */
export async function createApp(options: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    // Logs go to stderr: stdout carries only the CLI's own lines.
    logger: { level: options.logLevel, stream: process.stderr },
    // Per-request logs would cost more than the hot path itself; failures are logged below.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimit,
    // Unique across replicas and restarts (Fastify's own are req-1, req-2, …); a load balancer's X-Request-Id is kept.
    genReqId: (req) => {
      const given = req.headers["x-request-id"];
      return typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
    },
    forceCloseConnections: "idle",
    // Requests Node's HTTP parser refuses (headers over 16 KiB, a malformed
    // request line) never reach the error handler; answer them in the same shape.
    clientErrorHandler: (err, socket) => {
      if (err.code === "ECONNRESET" || socket.destroyed) return;
      const reply = clientErrorReply(err.code);
      const json = JSON.stringify(reply);
      if (socket.writable) {
        socket.write(
          `HTTP/1.1 ${reply.statusCode} ${reply.error}\r\nContent-Length: ${Buffer.byteLength(json)}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${json}`,
        );
      }
      socket.destroy(err);
    },
  });

  // Every answer names its request id, the one the service's, MEP's and UEP's log lines carry.
  app.addHook("onRequest", async (request, reply) => {
    reply.header("x-request-id", request.id);
  });
  for (const schema of API_SHARED_SCHEMAS) app.addSchema(schema);
  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "Conduit service",
        version: options.version,
        description:
          "REST API of the Conduit web service. Every route but /healthz, /readyz and /openapi.json needs `Authorization: Bearer <token>`.",
      },
      components: { securitySchemes: { bearerAuth: { type: "http", scheme: "bearer" } } },
      security: [{ bearerAuth: [] }],
    },
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === "string" ? json.$id : `def-${i}`),
    },
  });

  app.setErrorHandler((err, request, reply) => {
    const body = toApiError(err, request, options.bodyLimit);
    if (body.statusCode >= 500) request.log.error({ err }, `${request.method} ${request.url} failed.`);
    reply.code(body.statusCode).send(body);
  });
  app.setNotFoundHandler((request) => {
    throw new ServiceError(
      "ROUTE_NOT_FOUND",
      `There is no route ${request.method} ${request.url.split("?")[0]}; the routes are listed at /openapi.json.`,
    );
  });
  return app;
}

export function installRoutes(app: FastifyInstance, ctx: ApiContext, authenticator: Authenticator): void {
  app.decorateRequest("identity", null as never);
  // onRequest runs before the body is read, parsed or validated.
  app.addHook("onRequest", async (request) => {
    if (request.routeOptions.config?.public) return;
    request.identity = await authenticator.identify(request.headers.authorization);
  });
  app.addHook("onResponse", async (request, reply) => {
    // The route's pattern, not its URL: one series per route, whatever the ids.
    const route = request.routeOptions.url ?? "unmatched";
    ctx.metrics.httpRequest(request.method, route, reply.statusCode, reply.elapsedTime / 1000);
  });
  // After parsing, before the schemas and any SQL: on every route, text no store can hold is a 400.
  app.addHook("preValidation", async (request) => {
    checkRequestText({ params: request.params, querystring: request.query, body: request.body });
  });
  for (const routes of [
    serviceRoutes,
    identityRoutes,
    adminRoutes,
    clientRoutes,
    endpointRoutes,
    functionRoutes,
    taskRoutes,
    taskGroupRoutes,
    policyRoutes,
  ])
    routes(app, ctx);
}
