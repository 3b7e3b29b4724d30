import { API_ROUTES } from "@conduit/protocol";
import { ADMIN_USERNAME } from "../../credentials.js";
import { adminOnly, ServiceError } from "../../errors.js";
import type { RouteRegistrar } from "../api-context.js";
import { addRoute } from "../api-route.js";

/** Readiness answers within this, or says which part is slow. */
const READY_TIMEOUT_MS = 2_000;

/** Liveness, readiness and OpenAPI answer without a token; metrics need the administrator's. */
export const serviceRoutes: RouteRegistrar = (app, ctx) => {
  addRoute(app, API_ROUTES.health, {}, async () => ({ status: "ok" as const, version: ctx.version }));
  addRoute(app, API_ROUTES.ready, {}, async () => {
    const store = await answersWithin(ctx.store.ping());
    if (store !== true) {
      throw new ServiceError(
        "DATABASE_UNREACHABLE",
        `The service is not ready: its store (${ctx.store.description}) ${store}; check that the database is running.`,
      );
    }
    if (!ctx.broker.channel) {
      throw new ServiceError(
        "BROKER_UNAVAILABLE",
        "The service is not ready: it is not connected to RabbitMQ; check that the broker is running.",
      );
    }
    return { status: "ready" as const, version: ctx.version };
  });
  addRoute(
    app,
    API_ROUTES.metrics,
    {
      onRequest: async (request) => {
        if (request.identity.username !== ADMIN_USERNAME) throw adminOnly(request.identity.username, "read metrics");
      },
    },
    async (_request, reply) => {
      const text = await ctx.metrics.render();
      reply.type(ctx.metrics.contentType);
      return text;
    },
  );
  addRoute(app, API_ROUTES.openApi, {}, async () => app.swagger() as unknown as Record<string, unknown>);
};

/** True when `check` resolves in time, else what went wrong, as words that follow "its store". */
async function answersWithin(check: Promise<unknown>): Promise<true | string> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`did not answer within ${READY_TIMEOUT_MS} ms`), READY_TIMEOUT_MS);
  });
  try {
    return await Promise.race([check.then(() => true as const), late]);
  } catch (err) {
    return `failed: ${(err as Error).message}`;
  } finally {
    clearTimeout(timer);
  }
}
