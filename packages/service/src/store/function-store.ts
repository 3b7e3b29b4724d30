/**
 * Registered functions: one row per owner, payload and High-Assurance
 * endpoint, so registering the same payload again keeps its id. An HA
 * function's `last_used_at` (on the service's clock) is set at its
 * registration and at each submit, and the retention job deletes those unused
 * for longer than the retention period.
 */
import { randomUUID } from "node:crypto";
import type { Payload } from "@conduit/protocol";
import { sha256Hex } from "../auth/tokens.js";
import type { SqlExecutor } from "./sql-client.js";
import { selectList, UUID_LIST } from "./sql-select.js";
import type { FunctionRecord } from "./store-types.js";

/** A function as selected: its payload in two columns. */
type FunctionRow = Omit<FunctionRecord, "payload"> & { payloadStrategy: string; payloadData: string };

const FUNCTION_COLUMNS = selectList<FunctionRow>({
  id: "id",
  ownerId: "owner_id",
  name: "name",
  payloadStrategy: "payload_strategy",
  payloadData: "payload_data",
  payloadSha256: "payload_sha256",
  haEndpointId: "ha_endpoint_id",
  createdAt: "created_at",
});

function toFunction({ payloadStrategy, payloadData, ...row }: FunctionRow): FunctionRecord {
  return { ...row, payload: { strategy: payloadStrategy, data: payloadData } };
}

/** The unique index's expression: no HA endpoint counts as one value. */
const HA_KEY = "COALESCE(ha_endpoint_id, '00000000-0000-0000-0000-000000000000'::uuid)";

/**
 * Registers a function; the same payload registered again by the same owner
 * (for the same HA endpoint, or for none) keeps its id. `now` (ms) is when it
 * was last used, for an HA function.
 */
export async function registerFunction(
  sql: SqlExecutor,
  ownerId: string,
  payload: Payload,
  name: string | null,
  haEndpointId: string | null,
  now: number,
): Promise<FunctionRecord> {
  const digest = sha256Hex(payload.strategy, payload.data);
  const lastUsed = haEndpointId === null ? null : now;
  const inserted = await sql.query<FunctionRow>(
    `INSERT INTO functions (id, owner_id, name, payload_strategy, payload_data, payload_sha256, ha_endpoint_id,
       last_used_at)
     VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6, $7::uuid, to_timestamp($8::double precision / 1000.0))
     ON CONFLICT (owner_id, payload_sha256, (${HA_KEY})) DO NOTHING
     RETURNING ${FUNCTION_COLUMNS}`,
    [randomUUID(), ownerId, name, payload.strategy, payload.data, digest, haEndpointId, lastUsed],
  );
  if (inserted.rows[0]) return toFunction(inserted.rows[0]);
  // Registering an HA function again counts as a use.
  const { rows } = await sql.query<FunctionRow>(
    `UPDATE functions SET last_used_at = GREATEST(last_used_at, to_timestamp($4::double precision / 1000.0))
     WHERE owner_id = $1::uuid AND payload_sha256 = $2 AND ${HA_KEY} = COALESCE($3::uuid, '00000000-0000-0000-0000-000000000000'::uuid)
     RETURNING ${FUNCTION_COLUMNS}`,
    [ownerId, digest, haEndpointId, lastUsed],
  );
  if (!rows[0]) throw new Error(`Function ${digest} of ${ownerId} vanished right after it was registered.`);
  return toFunction(rows[0]);
}

/** The functions among `ids` that exist (one statement). */
export async function getFunctions(sql: SqlExecutor, ids: readonly string[]): Promise<FunctionRecord[]> {
  if (ids.length === 0) return [];
  const { rows } = await sql.query<FunctionRow>(`SELECT ${FUNCTION_COLUMNS} FROM functions WHERE id IN ${UUID_LIST}`, [
    JSON.stringify(ids),
  ]);
  return rows.map(toFunction);
}

/** Deletes the owner's function; false when there is no such function of this owner. Its tasks stay as history. */
export async function deleteFunction(sql: SqlExecutor, id: string, ownerId: string): Promise<boolean> {
  const { rows } = await sql.query<{ id: string }>(
    "DELETE FROM functions WHERE id = $1::uuid AND owner_id = $2::uuid RETURNING id",
    [id, ownerId],
  );
  return rows.length > 0;
}

/**
 * Records a submit of these HA functions at `now` (ms), unless they went
 * unused for longer than `retentionMs` (or are gone): returns the ids it
 * recorded, so a function left out is treated as purged.
 */
export async function touchHaFunctions(
  sql: SqlExecutor,
  ids: readonly string[],
  now: number,
  retentionMs: number,
): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const { rows } = await sql.query<{ id: string }>(
    `UPDATE functions SET last_used_at = to_timestamp($2::double precision / 1000.0)
     WHERE id IN ${UUID_LIST} AND ha_endpoint_id IS NOT NULL
       AND last_used_at >= to_timestamp(($2::double precision - $3::double precision) / 1000.0)
     RETURNING id`,
    [JSON.stringify(ids), now, retentionMs],
  );
  return new Set(rows.map((r) => r.id));
}

/**
 * The retention job's statement: deletes the HA functions unused since
 * `now - retentionMs` (ms), and those whose endpoint was deleted (they can
 * never run again); returns their ids. Their tasks stay as history.
 */
export async function purgeIdleHaFunctions(sql: SqlExecutor, now: number, retentionMs: number): Promise<string[]> {
  const { rows } = await sql.query<{ id: string }>(
    `DELETE FROM functions f
     WHERE f.ha_endpoint_id IS NOT NULL
       AND (f.last_used_at < to_timestamp(($1::double precision - $2::double precision) / 1000.0)
         OR NOT EXISTS (SELECT 1 FROM endpoints e WHERE e.id = f.ha_endpoint_id))
     RETURNING f.id`,
    [now, retentionMs],
  );
  return rows.map((r) => r.id);
}
