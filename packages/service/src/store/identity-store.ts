/**
 * Identities: who may use the service, and what each one owns when it is
 * removed.
 */
import { randomUUID } from "node:crypto";
import type { SqlClient, SqlExecutor } from "./sql-client.js";
import { selectList } from "./sql-select.js";
import type { Identity, IdentityFields, IdentityHoldings, IdentityRemoval } from "./store-types.js";

/** An identity's columns, from `identities i`. */
export const IDENTITY_COLUMNS = selectList<Identity>({
  id: "i.id",
  username: "i.username",
  name: "i.name",
  email: "i.email",
  organization: "i.organization",
  identityProvider: "i.identity_provider",
  createdAt: "i.created_at",
});

/** Creates the identity, or returns the one that already has this username. */
export async function createIdentity(sql: SqlExecutor, username: string, fields: IdentityFields): Promise<Identity> {
  const identity = (await insertIdentity(sql, username, fields)) ?? (await findIdentity(sql, "username", username));
  if (!identity) throw new Error(`Identity ${username} vanished right after it was created.`);
  return identity;
}

/** Creates the identity; undefined when the username is taken (unlike {@link createIdentity}). */
export async function insertIdentity(
  sql: SqlExecutor,
  username: string,
  fields: IdentityFields,
): Promise<Identity | undefined> {
  const { rows } = await sql.query<Identity>(
    `INSERT INTO identities AS i (id, username, name, email, organization, identity_provider)
     VALUES ($1::uuid, $2, $3, $4, $5, $6)
     ON CONFLICT (username) DO NOTHING
     RETURNING ${IDENTITY_COLUMNS}`,
    [
      randomUUID(),
      username,
      fields.name ?? null,
      fields.email ?? null,
      fields.organization ?? null,
      fields.identityProvider ?? null,
    ],
  );
  return rows[0];
}

/** The identity with this id or username, or undefined. */
export async function findIdentity(
  sql: SqlExecutor,
  column: "id" | "username",
  value: string,
): Promise<Identity | undefined> {
  const cast = column === "id" ? "::uuid" : "";
  const { rows } = await sql.query<Identity>(
    `SELECT ${IDENTITY_COLUMNS} FROM identities i WHERE i.${column} = $1${cast}`,
    [value],
  );
  return rows[0];
}

/** Every identity, by username. */
export async function listIdentities(sql: SqlExecutor): Promise<Identity[]> {
  const { rows } = await sql.query<Identity>(`SELECT ${IDENTITY_COLUMNS} FROM identities i ORDER BY i.username`);
  return rows;
}

/** What the identity owns now (on `sql`, a transaction's client when it is one). */
export async function identityHoldings(sql: SqlExecutor, identityId: string): Promise<IdentityHoldings> {
  const { rows } = await sql.query<{
    tasks: number;
    endpoint_ids: string[];
    uep_ids: string[];
    task_group_ids: string[];
  }>(
    `SELECT (SELECT count(*)::int FROM tasks WHERE owner_id = $1::uuid) AS tasks,
            ARRAY(SELECT id::text FROM endpoints WHERE owner_id = $1::uuid) AS endpoint_ids,
            ARRAY(SELECT uep_id::text FROM tasks WHERE owner_id = $1::uuid
                  UNION
                  SELECT id::text FROM ueps WHERE identity_id = $1::uuid
                    OR endpoint_id IN (SELECT id FROM endpoints WHERE owner_id = $1::uuid)) AS uep_ids,
            ARRAY(SELECT id::text FROM task_groups WHERE owner_id = $1::uuid) AS task_group_ids`,
    [identityId],
  );
  const row = rows[0];
  return {
    tasks: Number(row?.tasks ?? 0),
    endpointIds: row?.endpoint_ids ?? [],
    uepIds: row?.uep_ids ?? [],
    taskGroupIds: row?.task_group_ids ?? [],
  };
}

/**
 * Removes an identity with its tokens, in one transaction. Unless `force`,
 * an identity that owns endpoints or tasks is kept and those counts are
 * returned; with `force`, its tasks, task groups, functions, endpoints (and
 * every UEP of those endpoints) go too. Other identities' tasks stay as
 * history even when they ran on its endpoints.
 */
export async function removeIdentity(sql: SqlClient, identityId: string, force: boolean): Promise<IdentityRemoval> {
  return sql.transaction(async (tx) => {
    const holdings = await identityHoldings(tx, identityId);
    const owned = { endpoints: holdings.endpointIds.length, tasks: holdings.tasks };
    if (!force && (owned.endpoints > 0 || owned.tasks > 0)) return { removed: false, ...owned, holdings };
    // Children before parents: the foreign keys have no ON DELETE CASCADE (but tokens').
    for (const statement of [
      "DELETE FROM tasks WHERE owner_id = $1::uuid",
      `DELETE FROM ueps WHERE identity_id = $1::uuid
         OR endpoint_id IN (SELECT id FROM endpoints WHERE owner_id = $1::uuid)`,
      "DELETE FROM endpoints WHERE owner_id = $1::uuid",
      "DELETE FROM task_groups WHERE owner_id = $1::uuid",
      "DELETE FROM functions WHERE owner_id = $1::uuid",
    ]) {
      await tx.query(statement, [identityId]);
    }
    const deleted = await tx.query<{ id: string }>("DELETE FROM identities WHERE id = $1::uuid RETURNING id", [
      identityId,
    ]);
    return { removed: deleted.rows.length > 0, ...owned, holdings };
  });
}
