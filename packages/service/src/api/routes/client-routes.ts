/**
 * Client identities and signing keys, for the local administrator
 * (`conduit-service client …`, `conduit-service keys rotate`). A client
 * identity is an identity (`<client_id>@clients.conduit`) whose client id is
 * its identity id: the JWT of its client credentials grant names it in `sub`,
 * like a user's login does. Its secret is 32 random bytes, shown once, kept as
 * a SHA-256.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { API_ROUTES, type ClientInfo, type IdpInfo } from "@conduit/protocol";
import { discover } from "../../auth/federation.js";
import { RETIRED_KEY_GRACE_MS } from "../../auth/oidc.js";
import { checkUsername } from "../../auth/username.js";
import { clientNotFound, identityNotFound, ServiceError, sharedAccountOneIdentity } from "../../errors.js";
import { type ClientRecord, clientSecretHash, type UpstreamIdp } from "../../store/auth-store.js";
import type { ApiContext, RouteRegistrar } from "../api-context.js";
import { addRoute } from "../api-route.js";
import { removeWithBrokerAccounts, requireAdmin } from "./admin-routes.js";

/** The domain of client identities' usernames. */
export const CLIENT_DOMAIN = "clients.conduit";

export function clientUsername(clientId: string): string {
  return `${clientId}@${CLIENT_DOMAIN}`;
}

function newSecret(): string {
  return randomBytes(32).toString("base64url");
}

function clientInfo(client: ClientRecord): ClientInfo {
  return {
    client_id: client.clientId,
    name: client.name,
    username: clientUsername(client.clientId),
    owner: client.ownerUsername,
    created_at: client.createdAt.toISOString(),
  };
}

async function existingClient(ctx: ApiContext, clientId: string): Promise<ClientRecord> {
  const client = await ctx.authStore.getClient(clientId);
  if (!client) throw clientNotFound(clientId);
  return client;
}

function oidcOf(ctx: ApiContext) {
  const oidc = ctx.oidc();
  if (!oidc) throw new ServiceError("SERVICE_STARTING", "The service is still starting; try again in a moment.");
  return oidc;
}

function idpInfo(idp: UpstreamIdp): IdpInfo {
  return { domain: idp.domain, issuer: idp.issuer, client_id: idp.clientId, created_at: idp.createdAt.toISOString() };
}

export const clientRoutes: RouteRegistrar = (app, ctx) => {
  addRoute(app, API_ROUTES.listIdps, { onRequest: requireAdmin }, async () =>
    (await ctx.authStore.idps()).map(idpInfo),
  );

  addRoute(app, API_ROUTES.addIdp, { onRequest: requireAdmin }, async (request, reply) => {
    const { client_secret, client_id } = request.body;
    const domain = request.body.domain.trim().toLowerCase();
    const issuer = request.body.issuer.trim().replace(/\/$/, "");
    if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(domain)) {
      throw new ServiceError(
        "INVALID_REQUEST",
        `${JSON.stringify(domain)} is not a domain name; give one such as example.edu.`,
      );
    }
    // Checked now, so that a typo is told to the admin rather than to the first user signing in.
    try {
      await discover(issuer, client_id, client_secret);
    } catch (err) {
      throw new ServiceError(
        "IDP_DISCOVERY_FAILED",
        `Cannot read ${issuer}/.well-known/openid-configuration (${(err as Error).message.replace(/\.$/, "")}); check --issuer (an https URL, or http on this machine).`,
      );
    }
    await ctx.authStore.putIdp(domain, issuer, client_id, client_secret);
    const idp = await ctx.authStore.idpForDomain(domain);
    if (!idp) throw new Error(`The provider of ${domain} vanished right after it was added.`);
    reply.code(201);
    return idpInfo(idp);
  });

  addRoute(app, API_ROUTES.removeIdp, { onRequest: requireAdmin }, async (request) => {
    const idp = await ctx.authStore.idpForDomain(request.params.domain.toLowerCase());
    if (!idp || !(await ctx.authStore.removeIdp(idp.domain))) {
      throw new ServiceError(
        "IDP_NOT_FOUND",
        `No identity provider serves ${request.params.domain}; see them with \`conduit-service idp list\`.`,
      );
    }
    return idpInfo(idp);
  });

  addRoute(app, API_ROUTES.rotateKeys, { onRequest: requireAdmin }, async () => {
    const { kid, retired } = await oidcOf(ctx).rotateKeys();
    return {
      kid,
      retired,
      retired_keys_verify_until: new Date(Date.now() + RETIRED_KEY_GRACE_MS).toISOString(),
    };
  });

  addRoute(app, API_ROUTES.listClients, { onRequest: requireAdmin }, async () =>
    (await ctx.authStore.listClients()).map(clientInfo),
  );

  addRoute(app, API_ROUTES.createClient, { onRequest: requireAdmin }, async (request, reply) => {
    // With one shared broker account, a second identity could read and forge everything the first does.
    if (!ctx.brokerAccounts) throw sharedAccountOneIdentity();
    const { name, owner } = request.body;
    let ownerId: string | null = null;
    if (owner !== undefined) {
      const found = await ctx.store.findIdentityByUsername(checkUsername(owner));
      if (!found) throw identityNotFound(owner);
      ownerId = found.id;
    }
    const clientId = randomUUID();
    const secret = newSecret();
    await ctx.authStore.createClient(clientId, clientUsername(clientId), name, ownerId, clientSecretHash(secret));
    reply.code(201);
    return { client: clientInfo(await existingClient(ctx, clientId)), client_secret: secret };
  });

  addRoute(app, API_ROUTES.rotateClientSecret, { onRequest: requireAdmin }, async (request) => {
    const client = await existingClient(ctx, request.params.client_id);
    const secret = newSecret();
    if (!(await ctx.authStore.setClientSecret(client.clientId, clientSecretHash(secret)))) {
      throw clientNotFound(client.clientId);
    }
    return { client: clientInfo(client), client_secret: secret };
  });

  addRoute(app, API_ROUTES.removeClient, { onRequest: requireAdmin }, async (request) => {
    const client = await existingClient(ctx, request.params.client_id);
    const identity = await ctx.store.getIdentity(client.clientId);
    if (!identity) throw clientNotFound(client.clientId);
    const removal = await removeWithBrokerAccounts(ctx, identity, request.query.force ?? false);
    return { client: clientInfo(client), ...removal };
  });
};
