import { randomUUID } from "node:crypto";
import {
  commandQueue,
  type EndpointInfo,
  type EndpointStatusResponse,
  type RegisterEndpointRequest,
  type RegisterEndpointResponse,
} from "@conduit/protocol";
import { endpointIdTaken, endpointNotFound, endpointNotPermitted } from "../../errors.js";
import type { EndpointRecord } from "../../store/store-types.js";
import type { RouteRegistrar } from "../api-context.js";
import { endpointStatusSchema, listEndpointsSchema, registerEndpointSchema } from "../schemas.js";

export const endpointRoutes: RouteRegistrar = (app, ctx) => {
  app.post<{ Body: RegisterEndpointRequest }>(
    "/v1/endpoints",
    { schema: registerEndpointSchema },
    async (request): Promise<RegisterEndpointResponse> => {
      const { body, identity } = request;
      const endpointId = body.endpoint_id?.toLowerCase() ?? randomUUID();
      const endpoint = await ctx.store.registerEndpoint({
        id: endpointId,
        ownerId: identity.id,
        name: body.name,
        displayName: body.display_name ?? null,
        multiUser: body.multi_user ?? false,
        // As with Globus, an empty list means "no restriction here": the
        // endpoint itself then refuses every task.
        allowedFunctions: body.allowed_functions?.length ? body.allowed_functions.map((id) => id.toLowerCase()) : null,
        metadata: body.metadata ?? {},
      });
      if (!endpoint) throw endpointIdTaken(endpointId);
      ctx.submitter.forgetEndpoint(endpointId);
      // Declared and bound again at every registration (not from the cache): a
      // MEP with a scoped broker account may not bind, so it relies on this.
      await ctx.broker.ensureQueues([commandQueue(endpointId)], true);
      // A scoped account gets a new password at each registration (the MEP registers at every start).
      const url = ctx.brokerAccounts ? await ctx.brokerAccounts.endpointUrl(endpointId) : ctx.amqpPublicUrl;
      return { endpoint_id: endpointId, amqp: { url }, command_queue: commandQueue(endpointId) };
    },
  );

  app.get("/v1/endpoints", { schema: listEndpointsSchema }, async (request): Promise<EndpointInfo[]> => {
    const endpoints = await ctx.store.listEndpoints(request.identity.id);
    return endpoints.map(toEndpointInfo);
  });

  app.get<{ Params: { endpoint_id: string } }>(
    "/v1/endpoints/:endpoint_id/status",
    { schema: endpointStatusSchema },
    async (request): Promise<EndpointStatusResponse> => {
      const { endpoint_id: endpointId } = request.params;
      const endpoint = await ctx.store.getEndpoint(endpointId);
      if (!endpoint) throw endpointNotFound(endpointId);
      if (!endpoint.multiUser && endpoint.ownerId !== request.identity.id) throw endpointNotPermitted(endpointId);
      return {
        endpoint_id: endpoint.id,
        status: endpoint.status,
        last_heartbeat: endpoint.lastHeartbeat?.toISOString() ?? null,
      };
    },
  );
};

function toEndpointInfo(e: EndpointRecord): EndpointInfo {
  return {
    endpoint_id: e.id,
    name: e.name,
    display_name: e.displayName,
    owner: e.ownerUsername,
    multi_user: e.multiUser,
    status: e.status,
    last_heartbeat: e.lastHeartbeat?.toISOString() ?? null,
  };
}
