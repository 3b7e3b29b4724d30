import { API_ROUTES, HA_DISCLAIMER, payloadBytes } from "@conduit/protocol";
import {
  endpointNotFound,
  endpointNotHighAssurance,
  endpointNotPermitted,
  functionNotFound,
  functionNotOwned,
  functionTooLarge,
} from "../../errors.js";
import type { RouteRegistrar } from "../api-context.js";
import { addRoute } from "../api-route.js";

export const functionRoutes: RouteRegistrar = (app, ctx) => {
  addRoute(app, API_ROUTES.registerFunction, {}, async (request) => {
    const { function: payload, name } = request.body;
    const size = payloadBytes(payload);
    if (size > ctx.maxTaskBytes) {
      throw functionTooLarge(size, ctx.maxTaskBytes);
    }
    const haEndpointId = request.body.ha_endpoint_id?.toLowerCase();
    if (haEndpointId === undefined) {
      const fn = await ctx.store.registerFunction(request.identity.id, payload, name);
      ctx.submitter.rememberFunction(fn);
      return { function_id: fn.id };
    }
    // A High-Assurance function belongs to an HA endpoint the caller may submit to.
    const endpoint = await ctx.store.getEndpoint(haEndpointId);
    if (!endpoint) throw endpointNotFound(haEndpointId);
    if (!endpoint.multiUser && endpoint.ownerId !== request.identity.id) throw endpointNotPermitted(haEndpointId);
    if (!endpoint.highAssurance) throw endpointNotHighAssurance(haEndpointId);
    const fn = await ctx.store.registerFunction(request.identity.id, payload, name, {
      haEndpointId,
      now: ctx.clock(),
    });
    ctx.submitter.rememberFunction(fn);
    return { function_id: fn.id, disclaimer: HA_DISCLAIMER };
  });

  // Any identity may read (and run) a function whose id it knows, as with Globus.
  addRoute(app, API_ROUTES.getFunction, {}, async (request) => {
    const fn = await ctx.store.getFunction(request.params.function_id);
    if (!fn) throw functionNotFound(request.params.function_id);
    return {
      function_id: fn.id,
      name: fn.name,
      function: fn.payload,
      ...(fn.haEndpointId ? { ha_endpoint_id: fn.haEndpointId } : {}),
    };
  });

  addRoute(app, API_ROUTES.deleteFunction, {}, async (request) => {
    const functionId = request.params.function_id.toLowerCase();
    const fn = await ctx.store.getFunction(functionId);
    if (!fn) throw functionNotFound(functionId);
    if (fn.ownerId !== request.identity.id) throw functionNotOwned(functionId);
    // Gone already (a concurrent delete) counts as deleted: the caller's intent holds.
    await ctx.store.deleteFunction(functionId, request.identity.id);
    ctx.submitter.forgetFunction(functionId);
    return { id: functionId, deleted: true as const };
  });
};
