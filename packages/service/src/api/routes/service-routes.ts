import { API_ROUTES } from "@conduit/protocol";
import type { RouteRegistrar } from "../api-context.js";
import { addRoute } from "../api-route.js";

/** Routes answered without a token. */
export const serviceRoutes: RouteRegistrar = (app, ctx) => {
  addRoute(app, API_ROUTES.health, {}, async () => ({ status: "ok" as const, version: ctx.version }));
  addRoute(app, API_ROUTES.openApi, {}, async () => app.swagger() as unknown as Record<string, unknown>);
};
