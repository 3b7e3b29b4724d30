import { randomUUID } from "node:crypto";
import { API_ROUTES, commandQueue, type EndpointInfo, endpointBrokerUser, toWireError } from "@conduit/protocol";
import { ADMIN_USERNAME } from "../../credentials.js";
import {
  authPolicyNotFound,
  endpointHasTasks,
  endpointIdTaken,
  endpointNotFound,
  endpointNotOwned,
  endpointNotPermitted,
  highAssuranceFixed,
  notHighAssurance,
  sharedAccountMultiUser,
  subscriptionNotFound,
  TaskEndedError,
} from "../../errors.js";
import type { EndpointRecord } from "../../store/store-types.js";
import type { ApiContext, RouteRegistrar } from "../api-context.js";
import { addRoute } from "../api-route.js";
import { publishOutcomes } from "./publish-outcomes.js";

export const endpointRoutes: RouteRegistrar = (app, ctx) => {
  addRoute(app, API_ROUTES.registerEndpoint, {}, async (request) => {
    const { body, identity } = request;
    // Every UEP of a multi-user endpoint would hold the one account that reads and forges everything.
    if (body.multi_user && !ctx.brokerAccounts) throw sharedAccountMultiUser();
    const { authPolicyId, subscriptionId } = await checkRegistrationPolicy(ctx, body);
    const endpointId = body.endpoint_id?.toLowerCase() ?? randomUUID();
    const highAssurance = body.high_assurance ?? false;
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
      highAssurance,
      authPolicyId,
      subscriptionId,
      contactEmail: body.contact_email ?? null,
    });
    if (!endpoint) {
      const existing = await ctx.store.getEndpoint(endpointId);
      // Refused by the owner: what the first registration fixed stays, either way.
      if (existing?.ownerId === identity.id && existing.highAssurance !== highAssurance) {
        throw highAssuranceFixed(endpointId, body.name, existing.highAssurance);
      }
      // The owner's name only for the administrator: to anyone else it would say who runs what.
      const isAdmin = identity.username === ADMIN_USERNAME;
      const ownerId = isAdmin ? existing?.ownerId : undefined;
      const owner = ownerId ? (await ctx.store.getIdentity(ownerId))?.username : undefined;
      throw endpointIdTaken(endpointId, body.name, identity.username, owner);
    }
    ctx.submitter.forgetEndpoint(endpointId);
    ctx.policies.forgetEndpoint(endpointId);
    // Declared and bound again at every registration (not from the cache): a
    // MEP with a scoped broker account may not bind, so it relies on this.
    await ctx.broker.ensureQueues([commandQueue(endpointId)], true);
    // A scoped account gets a new password at each registration (the MEP registers at every start).
    const url = ctx.brokerAccounts ? await ctx.brokerAccounts.endpointUrl(endpointId) : ctx.amqpPublicUrl;
    return {
      endpoint_id: endpointId,
      amqp: { url, serviceUser: ctx.broker.user, managementPort: ctx.managementPort },
      command_queue: commandQueue(endpointId),
    };
  });

  addRoute(app, API_ROUTES.listEndpoints, {}, async (request) => {
    const endpoints = await ctx.store.listEndpoints(request.identity.id);
    return endpoints.map(toEndpointInfo);
  });

  // As for its status: one's own endpoints, and multi-user endpoints (which anyone may submit to).
  addRoute(app, API_ROUTES.getEndpoint, {}, async (request) => {
    const endpointId = request.params.endpoint_id.toLowerCase();
    const endpoint = await ctx.store.getEndpoint(endpointId);
    if (!endpoint) throw endpointNotFound(endpointId);
    if (!endpoint.multiUser && endpoint.ownerId !== request.identity.id) throw endpointNotPermitted(endpointId);
    return toEndpointInfo(endpoint);
  });

  addRoute(app, API_ROUTES.deleteEndpoint, {}, async (request) => {
    const endpointId = request.params.endpoint_id.toLowerCase();
    const endpoint = await ctx.store.getEndpoint(endpointId);
    if (!endpoint) throw endpointNotFound(endpointId);
    if (endpoint.ownerId !== request.identity.id) throw endpointNotOwned(endpointId);
    const deleted = new TaskEndedError(
      "ENDPOINT_DELETED",
      `Endpoint ${endpointId} was deleted before this task finished; submit it to another endpoint.`,
    );
    // The schema's default fills `force` in; its type cannot say so.
    const deletion = await ctx.store.deleteEndpoint(
      endpointId,
      request.identity.id,
      request.query.force ?? false,
      toWireError(deleted),
    );
    if (!deletion.deleted && deletion.activeTasks > 0) throw endpointHasTasks(endpointId, deletion.activeTasks);
    // Not deleted and nothing active: a concurrent delete got there first, which is what was asked.
    ctx.submitter.forgetEndpoint(endpointId);
    // Submitters waiting on the tasks a forced delete failed hear it like any result.
    await publishOutcomes(ctx.broker, deletion.failed);
    // Its MEP's credentials stop working (the account is made again if the endpoint re-registers).
    await ctx.brokerAccounts?.deleteUser(endpointBrokerUser(endpointId));
    return { id: endpointId, deleted: true as const };
  });

  addRoute(app, API_ROUTES.endpointStatus, {}, async (request) => {
    const { endpoint_id: endpointId } = request.params;
    const endpoint = await ctx.store.getEndpoint(endpointId);
    if (!endpoint) throw endpointNotFound(endpointId);
    if (!endpoint.multiUser && endpoint.ownerId !== request.identity.id) throw endpointNotPermitted(endpointId);
    return {
      endpoint_id: endpoint.id,
      status: endpoint.status,
      last_heartbeat: endpoint.lastHeartbeat?.toISOString() ?? null,
    };
  });
};

/**
 * The policy and subscription a registration names, each checked to exist;
 * with `high_assurance`, both must be there and be High-Assurance (upstream's rule).
 */
async function checkRegistrationPolicy(
  ctx: ApiContext,
  body: { authentication_policy?: string | null; subscription_id?: string | null; high_assurance?: boolean },
): Promise<{ authPolicyId: string | null; subscriptionId: string | null }> {
  const authPolicyId = body.authentication_policy?.toLowerCase() ?? null;
  const subscriptionId = body.subscription_id?.toLowerCase() ?? null;
  const policy = authPolicyId === null ? undefined : await ctx.store.getAuthPolicy(authPolicyId);
  if (authPolicyId !== null && !policy) throw authPolicyNotFound(authPolicyId);
  const subscription = subscriptionId === null ? undefined : await ctx.store.getSubscription(subscriptionId);
  if (subscriptionId !== null && !subscription) throw subscriptionNotFound(subscriptionId);
  if (body.high_assurance && !(policy?.highAssurance && subscription?.highAssurance)) {
    const missing = [
      ...(policy?.highAssurance
        ? []
        : [policy ? `policy ${policy.id} is not HA` : "no authentication_policy is given"]),
      ...(subscription?.highAssurance
        ? []
        : [subscription ? `subscription ${subscription.id} is not HA` : "no subscription_id is given"]),
    ];
    throw notHighAssurance(missing.join(" and "));
  }
  return { authPolicyId, subscriptionId };
}

function toEndpointInfo(e: EndpointRecord): EndpointInfo {
  return {
    endpoint_id: e.id,
    name: e.name,
    display_name: e.displayName,
    owner: e.ownerUsername,
    multi_user: e.multiUser,
    high_assurance: e.highAssurance,
    status: e.status,
    last_heartbeat: e.lastHeartbeat?.toISOString() ?? null,
  };
}
