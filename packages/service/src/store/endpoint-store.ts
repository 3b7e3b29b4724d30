/**
 * Endpoints: registration, MEP heartbeats, and deletion with the tasks it
 * leaves behind.
 */
import type { WireError } from "@conduit/protocol";
import type { SqlClient, SqlExecutor } from "./sql-client.js";
import { selectList } from "./sql-select.js";
import type { EndpointDeletion, EndpointRecord, EndpointRegistration } from "./store-types.js";
import { TERMINAL_STATES } from "./task-state-sql.js";
import { TASK_COLUMNS, type TaskRow, toTask } from "./task-store.js";

/**
 * An endpoint's columns, from `endpoints e JOIN identities i ON i.id = e.owner_id`.
 * The status is the last heartbeat's word, and only while the heartbeats keep
 * coming (younger than three periods, on the database clock).
 */
const ENDPOINT_COLUMNS = selectList<EndpointRecord>({
  id: "e.id",
  ownerId: "e.owner_id",
  ownerUsername: "i.username",
  name: "e.name",
  displayName: "e.display_name",
  multiUser: "e.multi_user",
  allowedFunctions: "e.allowed_functions",
  metadata: "e.metadata",
  status: `CASE WHEN e.status = 'online' AND e.heartbeat_period > 0
        AND e.last_heartbeat > now() - make_interval(secs => 3 * e.heartbeat_period)
    THEN 'online' ELSE 'offline' END`,
  lastHeartbeat: "e.last_heartbeat",
  heartbeatPeriod: "e.heartbeat_period",
  lastError: "e.last_error",
  highAssurance: "e.high_assurance",
  createdAt: "e.created_at",
  authPolicyId: "e.auth_policy_id",
  subscriptionId: "e.subscription_id",
  contactEmail: "e.contact_email",
});

const FROM_ENDPOINTS = "FROM endpoints e JOIN identities i ON i.id = e.owner_id";

/**
 * Registers a new endpoint or updates a known one of the same owner.
 * Returns undefined when the id belongs to another owner, or when the
 * registration's `highAssurance` differs from the first one's (which stays).
 */
export async function registerEndpoint(
  sql: SqlExecutor,
  reg: EndpointRegistration,
): Promise<EndpointRecord | undefined> {
  const { rows } = await sql.query<{ id: string }>(
    `INSERT INTO endpoints (id, owner_id, name, display_name, multi_user, allowed_functions, metadata,
       auth_policy_id, subscription_id, contact_email, high_assurance)
     VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6::jsonb, $7::jsonb, $8::uuid, $9::uuid, $10, $11)
     ON CONFLICT (id) DO UPDATE SET
       name = EXCLUDED.name, display_name = EXCLUDED.display_name, multi_user = EXCLUDED.multi_user,
       allowed_functions = EXCLUDED.allowed_functions, metadata = EXCLUDED.metadata,
       auth_policy_id = EXCLUDED.auth_policy_id, subscription_id = EXCLUDED.subscription_id,
       contact_email = EXCLUDED.contact_email, updated_at = now()
     WHERE endpoints.owner_id = EXCLUDED.owner_id AND endpoints.high_assurance = EXCLUDED.high_assurance
     RETURNING id`,
    [
      reg.id,
      reg.ownerId,
      reg.name,
      reg.displayName ?? null,
      reg.multiUser ?? false,
      reg.allowedFunctions ? JSON.stringify(reg.allowedFunctions) : null,
      JSON.stringify(reg.metadata ?? {}),
      reg.authPolicyId ?? null,
      reg.subscriptionId ?? null,
      reg.contactEmail ?? null,
      reg.highAssurance ?? false,
    ],
  );
  return rows[0] && getEndpoint(sql, reg.id);
}

export async function getEndpoint(sql: SqlExecutor, id: string): Promise<EndpointRecord | undefined> {
  const { rows } = await sql.query<EndpointRecord>(
    `SELECT ${ENDPOINT_COLUMNS} ${FROM_ENDPOINTS} WHERE e.id = $1::uuid`,
    [id],
  );
  return rows[0];
}

/** The endpoints an identity owns, oldest first. */
export async function listEndpoints(sql: SqlExecutor, ownerId: string): Promise<EndpointRecord[]> {
  const { rows } = await sql.query<EndpointRecord>(
    `SELECT ${ENDPOINT_COLUMNS} ${FROM_ENDPOINTS} WHERE e.owner_id = $1::uuid ORDER BY e.created_at, e.id`,
    [ownerId],
  );
  return rows;
}

/**
 * Records a MEP heartbeat: `period` 0 means the MEP is shutting down. An
 * `error` is kept as the endpoint's last error. False for an unknown endpoint.
 */
export async function recordEndpointHeartbeat(
  sql: SqlExecutor,
  endpointId: string,
  period: number,
  error?: WireError,
): Promise<boolean> {
  const { rows } = await sql.query<{ id: string }>(
    `UPDATE endpoints SET last_heartbeat = now(), heartbeat_period = $2, status = $3,
       last_error = COALESCE($4::jsonb, last_error)
     WHERE id = $1::uuid RETURNING id`,
    [endpointId, period, period > 0 ? "online" : "offline", error ? JSON.stringify(error) : null],
  );
  return rows.length > 0;
}

/**
 * Deletes the owner's endpoint and its UEPs in one transaction; its tasks stay
 * as history. Unless `force`, an endpoint with tasks not yet terminal is kept
 * (`deleted: false`, with their count); with `force`, those tasks are failed
 * with `error` and returned, so their submitters can be told.
 */
export async function deleteEndpoint(
  sql: SqlClient,
  id: string,
  ownerId: string,
  force: boolean,
  error: WireError,
): Promise<EndpointDeletion> {
  return sql.transaction(async (tx) => {
    const endpoint = await tx.query<{ id: string }>(
      "SELECT id FROM endpoints WHERE id = $1::uuid AND owner_id = $2::uuid FOR UPDATE",
      [id, ownerId],
    );
    if (endpoint.rows.length === 0) return { deleted: false, activeTasks: 0, failed: [] };
    const active = await tx.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM tasks
       WHERE endpoint_id = $1::uuid AND state NOT IN ${TERMINAL_STATES}`,
      [id],
    );
    const activeTasks = Number(active.rows[0]?.n ?? 0);
    if (activeTasks > 0 && !force) return { deleted: false, activeTasks, failed: [] };
    const failed = await tx.query<TaskRow>(
      `UPDATE tasks SET state = 'failed', error = $2::jsonb, completed_at = now()
       WHERE endpoint_id = $1::uuid AND state NOT IN ${TERMINAL_STATES}
       RETURNING ${TASK_COLUMNS}`,
      [id, JSON.stringify(error)],
    );
    await tx.query("DELETE FROM ueps WHERE endpoint_id = $1::uuid", [id]);
    await tx.query("DELETE FROM endpoints WHERE id = $1::uuid", [id]);
    return { deleted: true, activeTasks, failed: failed.rows.map(toTask) };
  });
}
