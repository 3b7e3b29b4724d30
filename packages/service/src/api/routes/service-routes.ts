import type { HealthResponse } from "@conduit/protocol";
import type { RouteRegistrar } from "../api-context.js";
import { healthSchema, openApiSchema } from "../schemas.js";

/** Routes answered without a token. */
export const serviceRoutes: RouteRegistrar = (app, ctx) => {
  app.get(
    "/healthz",
    { schema: healthSchema, config: { public: true } },
    async (): Promise<HealthResponse> => ({
      status: "ok",
      version: ctx.version,
    }),
  );
  app.get("/openapi.json", { schema: openApiSchema, config: { public: true } }, async () => app.swagger());
};
