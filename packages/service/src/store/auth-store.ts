/**
 * What the login side of the service keeps (migration 0004): oidc-provider's
 * models, the token signing keys, revoked grants, local passwords, client
 * identities and the login record. Over the same {@link SqlClient} as the
 * {@link Store}, so PGlite and Postgres run the same SQL.
 */
import { createHash } from "node:crypto";
import type { Adapter, AdapterPayload } from "oidc-provider";
import type { SqlClient } from "./sql-client.js";

/** A private signing key (JWK) and its state. */
export interface SigningKeyRecord {
  kid: string;
  privateJwk: Record<string, unknown>;
  createdAt: Date;
  /** Set when `keys rotate` replaced it: it verifies but no longer signs. */
  retiredAt: Date | null;
}

export interface ClientRecord {
  clientId: string;
  name: string;
  ownerId: string | null;
  ownerUsername: string | null;
  createdAt: Date;
}

export interface UpstreamIdp {
  domain: string;
  issuer: string;
  clientId: string;
  clientSecret: string;
  createdAt: Date;
}

export interface LoginRecord {
  identityId: string;
  method: string;
  authTime: Date;
  address: string | null;
  /** OpenID `amr` values: `pwd`, `otp`, `mfa`, or what an upstream provider said. */
  amr: string[];
}

/** A TOTP enrolment (RFC 6238) of a local account. */
export interface TotpRecord {
  /** Base32. */
  secret: string;
  /** False until a first code was accepted: the login asks for codes only once it is true. */
  confirmed: boolean;
  /** The time step of the last code accepted (each code works once). */
  lastStep: number;
}

/** The SHA-256 a client secret is kept as (secrets are 32 random bytes: no slow hash needed). */
export function clientSecretHash(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

interface ModelRow {
  payload: AdapterPayload;
  consumed_at: Date | null;
}

export class AuthStore {
  /** @param clock dates the logins it records (the service's clock option). */
  constructor(
    private readonly sql: SqlClient,
    private readonly clock: () => number = Date.now,
  ) {}

  /** oidc-provider's adapter for one model; `Client` reads the client identities. */
  adapter(model: string): Adapter {
    return model === "Client" ? new ClientAdapter(this.sql) : new ModelAdapter(this.sql, model);
  }

  /** Deletes expired provider models and deny-list entries; returns how many rows went. */
  async sweepExpired(): Promise<number> {
    const a = await this.sql.query<{ id: string }>("DELETE FROM oidc_models WHERE expires_at < now() RETURNING id");
    const b = await this.sql.query<{ grant_id: string }>(
      "DELETE FROM oidc_revoked_grants WHERE expires_at < now() RETURNING grant_id",
    );
    return a.rows.length + b.rows.length;
  }

  // ---- signing keys ---------------------------------------------------------

  /** Every key, newest first. */
  async signingKeys(): Promise<SigningKeyRecord[]> {
    const { rows } = await this.sql.query<{
      kid: string;
      private_jwk: Record<string, unknown>;
      created_at: Date;
      retired_at: Date | null;
    }>("SELECT kid, private_jwk, created_at, retired_at FROM oidc_signing_keys ORDER BY created_at DESC, kid");
    return rows.map((r) => ({
      kid: r.kid,
      privateJwk: r.private_jwk,
      createdAt: r.created_at,
      retiredAt: r.retired_at,
    }));
  }

  /**
   * Adds a signing key. With `retireOthers`, the keys signing until now are
   * retired in the same transaction (rotation); without, the key is added
   * only when there is no signing key yet (first start, replicas racing).
   */
  async addSigningKey(kid: string, privateJwk: Record<string, unknown>, retireOthers: boolean): Promise<boolean> {
    return this.sql.transaction(async (tx) => {
      await tx.query("LOCK TABLE oidc_signing_keys IN EXCLUSIVE MODE");
      if (retireOthers) {
        await tx.query("UPDATE oidc_signing_keys SET retired_at = now() WHERE retired_at IS NULL");
      } else {
        const { rows } = await tx.query("SELECT kid FROM oidc_signing_keys WHERE retired_at IS NULL");
        if (rows.length > 0) return false;
      }
      await tx.query("INSERT INTO oidc_signing_keys (kid, private_jwk) VALUES ($1, $2::jsonb)", [
        kid,
        JSON.stringify(privateJwk),
      ]);
      return true;
    });
  }

  /** Deletes keys retired longer ago than `graceMs` (their tokens have expired). */
  async dropRetiredKeys(graceMs: number): Promise<number> {
    const { rows } = await this.sql.query<{ kid: string }>(
      `DELETE FROM oidc_signing_keys
       WHERE retired_at IS NOT NULL AND retired_at < now() - make_interval(secs => $1) RETURNING kid`,
      [graceMs / 1000],
    );
    return rows.length;
  }

  // ---- revocation deny-list -------------------------------------------------

  /** Grants whose access tokens must be refused (until `expires_at`). */
  async revokedGrants(): Promise<string[]> {
    const { rows } = await this.sql.query<{ grant_id: string }>(
      "SELECT grant_id FROM oidc_revoked_grants WHERE expires_at > now()",
    );
    return rows.map((r) => r.grant_id);
  }

  // ---- local passwords ------------------------------------------------------

  async setPasswordHash(identityId: string, hash: string): Promise<void> {
    await this.sql.query(
      `INSERT INTO local_passwords (identity_id, password_hash) VALUES ($1::uuid, $2)
       ON CONFLICT (identity_id) DO UPDATE SET password_hash = EXCLUDED.password_hash, updated_at = now()`,
      [identityId, hash],
    );
  }

  async passwordHash(identityId: string): Promise<string | undefined> {
    const { rows } = await this.sql.query<{ password_hash: string }>(
      "SELECT password_hash FROM local_passwords WHERE identity_id = $1::uuid",
      [identityId],
    );
    return rows[0]?.password_hash;
  }

  // ---- logins ---------------------------------------------------------------

  /** Records a login made now (the clock's now), with how it was made (`amr`). */
  async recordLogin(identityId: string, method: string, address: string | null, amr: string[] = []): Promise<void> {
    await this.sql.query(
      "INSERT INTO logins (identity_id, method, address, auth_time, amr) VALUES ($1::uuid, $2, $3, $4, $5::jsonb)",
      [identityId, method, address, new Date(this.clock()), JSON.stringify(amr)],
    );
  }

  /** The identity's newest login, if any. */
  async lastLogin(identityId: string): Promise<LoginRecord | undefined> {
    return (await this.logins(identityId, 1))[0];
  }

  /** An identity's logins, newest first (at most `limit`). */
  async logins(identityId: string, limit = 1000): Promise<LoginRecord[]> {
    const { rows } = await this.sql.query<{
      identity_id: string;
      method: string;
      auth_time: Date;
      address: string | null;
      amr: string[];
    }>(
      `SELECT identity_id, method, auth_time, address, amr FROM logins WHERE identity_id = $1::uuid
       ORDER BY auth_time DESC, id DESC LIMIT $2`,
      [identityId, limit],
    );
    return rows.map((r) => ({
      identityId: r.identity_id,
      method: r.method,
      authTime: r.auth_time,
      address: r.address,
      amr: r.amr,
    }));
  }

  // ---- TOTP (second factor of local accounts) -------------------------------

  /**
   * Sets the identity's secret, replacing any: unconfirmed (the login does not
   * ask for codes yet), or confirmed with a code of this step already taken.
   */
  async setTotpSecret(identityId: string, secret: string, confirmed?: { confirmedAtStep: number }): Promise<void> {
    await this.sql.query(
      `INSERT INTO totp_secrets (identity_id, secret, confirmed, last_step) VALUES ($1::uuid, $2, $3, $4)
       ON CONFLICT (identity_id) DO UPDATE SET secret = EXCLUDED.secret, confirmed = EXCLUDED.confirmed,
         last_step = EXCLUDED.last_step`,
      [identityId, secret, confirmed !== undefined, confirmed?.confirmedAtStep ?? 0],
    );
  }

  async totp(identityId: string): Promise<TotpRecord | undefined> {
    const { rows } = await this.sql.query<{ secret: string; confirmed: boolean; last_step: string | number }>(
      "SELECT secret, confirmed, last_step FROM totp_secrets WHERE identity_id = $1::uuid",
      [identityId],
    );
    const r = rows[0];
    return r && { secret: r.secret, confirmed: r.confirmed, lastStep: Number(r.last_step) };
  }

  /**
   * Takes a code's time step: true (and the enrolment confirmed) only when it
   * is later than the last one taken, so a code is good once even when two
   * sign-ins race.
   */
  async takeTotpStep(identityId: string, step: number): Promise<boolean> {
    const { rows } = await this.sql.query(
      `UPDATE totp_secrets SET last_step = $2, confirmed = true
       WHERE identity_id = $1::uuid AND last_step < $2 RETURNING identity_id`,
      [identityId, step],
    );
    return rows.length > 0;
  }

  async removeTotp(identityId: string): Promise<boolean> {
    const { rows } = await this.sql.query(
      "DELETE FROM totp_secrets WHERE identity_id = $1::uuid RETURNING identity_id",
      [identityId],
    );
    return rows.length > 0;
  }

  // ---- upstream identity providers ----------------------------------------

  /** Adds (or replaces) the provider of a domain. */
  async putIdp(domain: string, issuer: string, clientId: string, clientSecret: string): Promise<void> {
    await this.sql.query(
      `INSERT INTO upstream_idps (domain, issuer, client_id, client_secret) VALUES ($1, $2, $3, $4)
       ON CONFLICT (domain) DO UPDATE SET issuer = EXCLUDED.issuer, client_id = EXCLUDED.client_id,
         client_secret = EXCLUDED.client_secret`,
      [domain, issuer, clientId, clientSecret],
    );
  }

  async idps(): Promise<UpstreamIdp[]> {
    const { rows } = await this.sql.query<IdpRow>(`${IDP_SELECT} ORDER BY domain`);
    return rows.map(toIdp);
  }

  async idpForDomain(domain: string): Promise<UpstreamIdp | undefined> {
    const { rows } = await this.sql.query<IdpRow>(`${IDP_SELECT} WHERE domain = $1`, [domain]);
    return rows[0] && toIdp(rows[0]);
  }

  async removeIdp(domain: string): Promise<boolean> {
    const { rows } = await this.sql.query("DELETE FROM upstream_idps WHERE domain = $1 RETURNING domain", [domain]);
    return rows.length > 0;
  }

  // ---- client identities ----------------------------------------------------

  /**
   * Creates a client identity: its identity (`username`, id = the client id)
   * and its client row, in one transaction.
   */
  async createClient(
    clientId: string,
    username: string,
    name: string,
    ownerId: string | null,
    secretHash: string,
  ): Promise<void> {
    await this.sql.transaction(async (tx) => {
      await tx.query(
        "INSERT INTO identities (id, username, name, identity_provider) VALUES ($1::uuid, $2, $3, 'client_credentials')",
        [clientId, username, name],
      );
      await tx.query(
        "INSERT INTO oidc_clients (client_id, name, owner_id, secret_sha256) VALUES ($1::uuid, $2, $3::uuid, $4)",
        [clientId, name, ownerId, secretHash],
      );
    });
  }

  async listClients(): Promise<ClientRecord[]> {
    const { rows } = await this.sql.query<ClientRow>(`${CLIENT_SELECT} ORDER BY c.name, c.client_id`);
    return rows.map(toClient);
  }

  async getClient(clientId: string): Promise<ClientRecord | undefined> {
    if (!isUuid(clientId)) return undefined;
    const { rows } = await this.sql.query<ClientRow>(`${CLIENT_SELECT} WHERE c.client_id = $1::uuid`, [clientId]);
    return rows[0] && toClient(rows[0]);
  }

  /** Replaces a client's secret; false when there is no such client. */
  async setClientSecret(clientId: string, secretHash: string): Promise<boolean> {
    if (!isUuid(clientId)) return false;
    const { rows } = await this.sql.query<{ client_id: string }>(
      "UPDATE oidc_clients SET secret_sha256 = $2 WHERE client_id = $1::uuid RETURNING client_id",
      [clientId, secretHash],
    );
    return rows.length > 0;
  }
}

interface IdpRow {
  domain: string;
  issuer: string;
  client_id: string;
  client_secret: string;
  created_at: Date;
}

const IDP_SELECT = "SELECT domain, issuer, client_id, client_secret, created_at FROM upstream_idps";

function toIdp(r: IdpRow): UpstreamIdp {
  return {
    domain: r.domain,
    issuer: r.issuer,
    clientId: r.client_id,
    clientSecret: r.client_secret,
    createdAt: r.created_at,
  };
}

interface ClientRow {
  client_id: string;
  name: string;
  owner_id: string | null;
  owner_username: string | null;
  created_at: Date;
}

const CLIENT_SELECT = `SELECT c.client_id, c.name, c.owner_id, o.username AS owner_username, c.created_at
  FROM oidc_clients c LEFT JOIN identities o ON o.id = c.owner_id`;

function toClient(r: ClientRow): ClientRecord {
  return {
    clientId: r.client_id,
    name: r.name,
    ownerId: r.owner_id,
    ownerUsername: r.owner_username,
    createdAt: r.created_at,
  };
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function isUuid(value: string): boolean {
  return UUID_RE.test(value);
}

/** One oidc-provider model in `oidc_models`. */
class ModelAdapter implements Adapter {
  constructor(
    private readonly sql: SqlClient,
    private readonly model: string,
  ) {}

  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    await this.sql.query(
      `INSERT INTO oidc_models (model, id, payload, grant_id, user_code, uid, expires_at)
       VALUES ($1, $2, $3::jsonb, $4, $5, $6, CASE WHEN $7::float8 IS NULL THEN NULL
                                                  ELSE now() + make_interval(secs => $7::float8) END)
       ON CONFLICT (model, id) DO UPDATE SET payload = EXCLUDED.payload, grant_id = EXCLUDED.grant_id,
         user_code = EXCLUDED.user_code, uid = EXCLUDED.uid, expires_at = EXCLUDED.expires_at`,
      [
        this.model,
        id,
        JSON.stringify(payload),
        payload.grantId ?? null,
        payload.userCode ?? null,
        payload.uid ?? null,
        expiresIn ?? null,
      ],
    );
  }

  find(id: string): Promise<AdapterPayload | undefined> {
    return this.findBy("id", id);
  }

  findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return this.findBy("uid", uid);
  }

  findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return this.findBy("user_code", userCode);
  }

  private async findBy(column: "id" | "uid" | "user_code", value: string): Promise<AdapterPayload | undefined> {
    const { rows } = await this.sql.query<ModelRow>(
      `SELECT payload, consumed_at FROM oidc_models
       WHERE model = $1 AND ${column} = $2 AND (expires_at IS NULL OR expires_at > now())`,
      [this.model, value],
    );
    const row = rows[0];
    if (!row) return undefined;
    return row.consumed_at
      ? { ...row.payload, consumed: Math.floor(row.consumed_at.getTime() / 1000) }
      : { ...row.payload };
  }

  async consume(id: string): Promise<void> {
    await this.sql.query("UPDATE oidc_models SET consumed_at = now() WHERE model = $1 AND id = $2", [this.model, id]);
  }

  async destroy(id: string): Promise<void> {
    await this.sql.query("DELETE FROM oidc_models WHERE model = $1 AND id = $2", [this.model, id]);
  }

  /**
   * Deletes every model of the grant (whatever this adapter's model) and puts
   * the grant on the deny-list for as long as an access token of it may live.
   */
  async revokeByGrantId(grantId: string): Promise<void> {
    await this.sql.transaction(async (tx) => {
      await tx.query("DELETE FROM oidc_models WHERE grant_id = $1", [grantId]);
      await tx.query(
        `INSERT INTO oidc_revoked_grants (grant_id, expires_at)
         VALUES ($1, now() + make_interval(secs => $2))
         ON CONFLICT (grant_id) DO UPDATE SET expires_at = EXCLUDED.expires_at`,
        [grantId, REVOCATION_KEEP_SECONDS],
      );
    });
  }
}

/** How long a revoked grant stays on the deny-list: longer than any access token lives (1 h) plus clock skew. */
export const REVOCATION_KEEP_SECONDS = 2 * 3600;

/**
 * The client identities, as oidc-provider client metadata. `client_secret` is
 * the SHA-256 of the secret: the provider compares the hash of what is
 * presented (see `hashedClientSecrets` in oidc.ts).
 */
class ClientAdapter implements Adapter {
  constructor(private readonly sql: SqlClient) {}

  async find(id: string): Promise<AdapterPayload | undefined> {
    if (!isUuid(id)) return undefined;
    const { rows } = await this.sql.query<{ secret_sha256: string }>(
      "SELECT secret_sha256 FROM oidc_clients WHERE client_id = $1::uuid",
      [id],
    );
    if (!rows[0]) return undefined;
    return {
      client_id: id.toLowerCase(),
      client_secret: rows[0].secret_sha256,
      grant_types: ["client_credentials"],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: "client_secret_basic",
    };
  }

  async upsert(): Promise<void> {
    throw new Error("Clients are made with `conduit-service client create`, not through the provider.");
  }

  async findByUid(): Promise<undefined> {
    return undefined;
  }

  async findByUserCode(): Promise<undefined> {
    return undefined;
  }

  async consume(): Promise<void> {}

  async destroy(): Promise<void> {}

  async revokeByGrantId(): Promise<void> {}
}
