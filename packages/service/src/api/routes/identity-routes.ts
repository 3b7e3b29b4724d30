import type { IdentityInfo } from "@conduit/protocol";
import { identityInfo } from "../../tasks/task-submitter.js";
import type { RouteRegistrar } from "../api-context.js";
import { whoamiSchema } from "../schemas.js";

export const identityRoutes: RouteRegistrar = (app) => {
  app.get(
    "/v1/whoami",
    { schema: whoamiSchema },
    async (request): Promise<IdentityInfo> => identityInfo(request.identity),
  );
};
