/**
 * Registered functions: one row per owner and payload, so registering the
 * same payload again keeps its id.
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
  createdAt: "created_at",
});

function toFunction({ payloadStrategy, payloadData, ...row }: FunctionRow): FunctionRecord {
  return { ...row, payload: { strategy: payloadStrategy, data: payloadData } };
}

/** Registers a function; the same payload registered again by the same owner keeps its id. */
export async function registerFunction(
  sql: SqlExecutor,
  ownerId: string,
  payload: Payload,
  name: string | null,
): Promise<FunctionRecord> {
  const digest = sha256Hex(payload.strategy, payload.data);
  const inserted = await sql.query<FunctionRow>(
    `INSERT INTO functions (id, owner_id, name, payload_strategy, payload_data, payload_sha256)
     VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6)
     ON CONFLICT (owner_id, payload_sha256) DO NOTHING
     RETURNING ${FUNCTION_COLUMNS}`,
    [randomUUID(), ownerId, name, payload.strategy, payload.data, digest],
  );
  if (inserted.rows[0]) return toFunction(inserted.rows[0]);
  const { rows } = await sql.query<FunctionRow>(
    `SELECT ${FUNCTION_COLUMNS} FROM functions WHERE owner_id = $1::uuid AND payload_sha256 = $2`,
    [ownerId, digest],
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
