/**
 * Identity management for the local administrator (`admin@localhost`): create,
 * list, new tokens, remove. `conduit-service user …` calls these through
 * admin-client.ts. Anyone else gets 403 before the body is even read.
 */
import { API_ROUTES } from "@conduit/protocol";
import type { FastifyRequest } from "fastify";
import { hashPassword } from "../../auth/passwords.js";
import { checkPassword, checkUsername } from "../../auth/username.js";
import { ADMIN_USERNAME } from "../../credentials.js";
import {
  adminNotRemovable,
  adminOnly,
  identityExists,
  identityInUse,
  identityNotFound,
  sharedAccountOneIdentity,
} from "../../errors.js";
import type { Store } from "../../store/store.js";
import type { Identity, TokenRecord } from "../../store/store-types.js";
import { identityInfo } from "../../tasks/task-submitter.js";
import type { ApiContext, RouteRegistrar } from "../api-context.js";
import { addRoute } from "../api-route.js";

// A route-level onRequest hook runs after the global one that sets request.identity.
export async function requireAdmin(request: FastifyRequest): Promise<void> {
  if (request.identity.username !== ADMIN_USERNAME) throw adminOnly(request.identity.username);
}

async function existingIdentity(store: Store, username: string): Promise<Identity> {
  const identity = await store.findIdentityByUsername(checkUsername(username));
  if (!identity) throw identityNotFound(username);
  return identity;
}

/** When a token made now with this lifetime expires (null: never). */
function expiryIn(seconds: number | undefined): Date | null {
  return seconds === undefined ? null : new Date(Date.now() + seconds * 1000);
}

export const adminRoutes: RouteRegistrar = (app, ctx) => {
  addRoute(app, API_ROUTES.listIdentities, { onRequest: requireAdmin }, async () => {
    const [identities, tokens] = await Promise.all([ctx.store.listIdentities(), ctx.store.listTokens()]);
    const byIdentity = new Map<string, TokenRecord[]>();
    for (const token of tokens) {
      const list = byIdentity.get(token.identityId);
      if (list) list.push(token);
      else byIdentity.set(token.identityId, [token]);
    }
    return identities.map((identity) => ({
      ...identityInfo(identity),
      tokens: (byIdentity.get(identity.id) ?? []).map((t) => ({
        created_at: t.createdAt.toISOString(),
        expires_at: t.expiresAt?.toISOString() ?? null,
        last_used_at: t.lastUsedAt?.toISOString() ?? null,
      })),
    }));
  });

  addRoute(app, API_ROUTES.createIdentity, { onRequest: requireAdmin }, async (request, reply) => {
    // With one shared broker account, a second identity could read and forge everything the first does.
    if (!ctx.brokerAccounts) throw sharedAccountOneIdentity();
    const { username, name, email, organization, identity_provider, token_expires_in_seconds, password } = request.body;
    // Hashed before the identity exists: a failure leaves nothing half made.
    const passwordHash = password === undefined ? undefined : await hashPassword(checkPassword(password));
    const identity = await ctx.store.insertIdentity(checkUsername(username), {
      name,
      email,
      organization,
      identityProvider: identity_provider,
    });
    if (!identity) throw identityExists(username);
    if (passwordHash) await ctx.authStore.setPasswordHash(identity.id, passwordHash);
    const expiresAt = expiryIn(token_expires_in_seconds);
    const token = await ctx.store.createToken(identity.id, expiresAt);
    reply.code(201);
    return { identity: identityInfo(identity), token, token_expires_at: expiresAt?.toISOString() ?? null };
  });

  addRoute(app, API_ROUTES.issueToken, { onRequest: requireAdmin }, async (request) => {
    const identity = await existingIdentity(ctx.store, request.params.username);
    const expiresAt = expiryIn(request.query.expires_in_seconds);
    const token = await ctx.store.createToken(identity.id, expiresAt);
    const revoked = request.query.revoke_others ? await ctx.store.revokeTokensExcept(identity.id, token) : 0;
    return { identity: identityInfo(identity), token, token_expires_at: expiresAt?.toISOString() ?? null, revoked };
  });

  addRoute(app, API_ROUTES.removeIdentity, { onRequest: requireAdmin }, async (request) => {
    const { username } = request.params;
    if (username === ADMIN_USERNAME) throw adminNotRemovable(username);
    const identity = await existingIdentity(ctx.store, username);
    // The schema's default fills `force` in; its type cannot say so.
    const removal = await removeWithBrokerAccounts(ctx, identity, request.query.force ?? false);
    return { identity: identityInfo(identity), endpoints: removal.endpoints, tasks: removal.tasks };
  });
};

/**
 * Removes an identity (a user's or a client's) and its broker accounts; throws
 * when it owns endpoints or tasks and not `force`, or is gone already.
 */
export async function removeWithBrokerAccounts(
  ctx: ApiContext,
  identity: Identity,
  force: boolean,
): Promise<{ endpoints: number; tasks: number }> {
  const { username } = identity;
  // Its broker accounts go first: should the management API fail (503), nothing is removed yet and a retry
  // does it all. RabbitMQ closes their connections, so its MEPs, UEPs and SDKs stop at once.
  const holdings = await ctx.store.identityHoldings(identity.id);
  if (force || (holdings.endpointIds.length === 0 && holdings.tasks === 0)) {
    await ctx.brokerAccounts?.deleteAccounts(holdings);
  }
  const removal = await ctx.store.removeIdentity(identity.id, force);
  if (!removal.removed && (removal.endpoints > 0 || removal.tasks > 0)) {
    throw identityInUse(username, removal.endpoints, removal.tasks);
  }
  // Not removed and owning nothing: someone removed it a moment ago.
  if (!removal.removed) throw identityNotFound(username);
  // Again, as the removal saw them: a registration or submit racing it may have made one again.
  await ctx.brokerAccounts?.deleteAccounts(removal.holdings);
  return { endpoints: removal.endpoints, tasks: removal.tasks };
}
