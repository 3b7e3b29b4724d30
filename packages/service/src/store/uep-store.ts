/**
 * User endpoints (UEPs): created with the first tasks routed to them (see
 * insert-tasks.ts), then kept alive by their heartbeats.
 */
import type { EngineStatusReport, WireError } from "@conduit/protocol";
import type { SqlExecutor } from "./sql-client.js";
import { selectList, UUID_LIST } from "./sql-select.js";
import type { UepRecord } from "./store-types.js";

const UEP_COLUMNS = selectList<UepRecord>({
  id: "id",
  endpointId: "endpoint_id",
  identityId: "identity_id",
  config: "config",
  runtime: "runtime",
  lastSeen: "last_seen",
});

export async function getUep(sql: SqlExecutor, id: string): Promise<UepRecord | undefined> {
  const { rows } = await sql.query<UepRecord>(`SELECT ${UEP_COLUMNS} FROM ueps WHERE id = $1::uuid`, [id]);
  return rows[0];
}

/**
 * Records a UEP heartbeat (its last_seen, and its engine when reported); an
 * `error` is kept as its endpoint's last error.
 */
export async function recordUepHeartbeat(
  sql: SqlExecutor,
  endpointId: string,
  uepId: string,
  error?: WireError,
  engine?: EngineStatusReport,
): Promise<boolean> {
  const { rows } = await sql.query<{ id: string }>(
    `UPDATE ueps SET last_seen = now(), engine = COALESCE($3::jsonb, engine)
     WHERE id = $1::uuid AND endpoint_id = $2::uuid RETURNING id`,
    [uepId, endpointId, engine ? JSON.stringify(engine) : null],
  );
  if (error) {
    await sql.query("UPDATE endpoints SET last_error = $2::jsonb WHERE id = $1::uuid", [
      endpointId,
      JSON.stringify(error),
    ]);
  }
  return rows.length > 0;
}

/**
 * Seconds since each UEP's last heartbeat (database clock): null for a UEP
 * that never sent one; unknown ids are left out.
 */
export async function uepHeartbeatAges(
  sql: SqlExecutor,
  uepIds: readonly string[],
): Promise<Map<string, number | null>> {
  if (uepIds.length === 0) return new Map();
  const { rows } = await sql.query<{ id: string; age: number | null }>(
    `SELECT id, EXTRACT(EPOCH FROM now() - last_seen)::double precision AS age FROM ueps WHERE id IN ${UUID_LIST}`,
    [JSON.stringify(uepIds)],
  );
  return new Map(rows.map((r) => [r.id, r.age === null ? null : Number(r.age)]));
}
