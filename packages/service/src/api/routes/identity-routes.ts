import { API_ROUTES } from "@conduit/protocol";
import { identityInfo } from "../../tasks/task-submitter.js";
import type { RouteRegistrar } from "../api-context.js";
import { addRoute } from "../api-route.js";

export const identityRoutes: RouteRegistrar = (app) => {
  addRoute(app, API_ROUTES.whoami, {}, async (request) => identityInfo(request.identity));
};
