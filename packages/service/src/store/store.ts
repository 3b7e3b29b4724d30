/**
 * The service's domain store over a {@link SqlClient} (PGlite or Postgres, the
 * same SQL). Hot-path methods take whole batches and run one statement each:
 * inserting N tasks, marking N tasks, storing N results.
 */

import { randomUUID } from "node:crypto";
import {
  endpointBrokerUser,
  type Payload,
  type TaskState,
  type UserRuntime,
  uepBrokerUser,
  type WireError,
} from "@conduit/protocol";
import { generateToken, hashToken, sha256Hex } from "../auth/tokens.js";
import { insertTasks } from "./insert-tasks.js";
import { countOpenTasks, countUeps, type OpenTaskCount, type UepCount } from "./metrics-queries.js";
import type { SqlClient, SqlExecutor } from "./sql-client.js";
import type {
  EndpointRecord,
  EndpointRegistration,
  FunctionRecord,
  Identity,
  IdentityFields,
  InsertTasksResult,
  ReportSender,
  StoredResult,
  TaskBatch,
  TaskRecord,
  TaskResultInput,
  TokenIdentity,
  TokenRecord,
  UepRecord,
} from "./store-types.js";
import { tokenHasExpired } from "./store-types.js";
import { NOT_STARTED_STATES, TERMINAL_STATES } from "./task-state-sql.js";

/** The ids whose broker accounts act for an identity (see {@link Store.identityHoldings}). */
export interface IdentityBrokerIds {
  /** Its endpoints (`conduit-ep-<id>`). */
  endpointIds: string[];
  /** UEPs that ran its tasks, or ran on its endpoints (`conduit-uep-<id>`). */
  uepIds: string[];
  /** Its task groups (`conduit-tg-<id>`). */
  taskGroupIds: string[];
}

/** What an identity owns: counts that decide a removal without `force`, and its broker account ids. */
export interface IdentityHoldings extends IdentityBrokerIds {
  tasks: number;
}

/** What {@link Store.removeIdentity} did, and what the identity owned. */
export interface IdentityRemoval {
  removed: boolean;
  endpoints: number;
  tasks: number;
  /** Read in the removing transaction: the broker accounts to delete with the identity. */
  holdings: IdentityHoldings;
}

interface IdentityRow {
  id: string;
  username: string;
  name: string | null;
  email: string | null;
  organization: string | null;
  identity_provider: string | null;
  created_at: Date;
}

interface EndpointRow {
  id: string;
  owner_id: string;
  owner_username: string;
  name: string;
  display_name: string | null;
  multi_user: boolean;
  allowed_functions: string[] | null;
  metadata: Record<string, unknown>;
  status: "online" | "offline";
  last_heartbeat: Date | null;
  heartbeat_period: number;
  last_error: WireError | null;
  created_at: Date;
}

interface FunctionRow {
  id: string;
  owner_id: string;
  name: string | null;
  payload_strategy: string;
  payload_data: string;
  payload_sha256: string;
  created_at: Date;
}

interface TaskRow {
  id: string;
  owner_id: string;
  endpoint_id: string;
  uep_id: string;
  function_id: string;
  task_group_id: string;
  state: TaskState;
  args_bytes: number;
  result_strategy: string | null;
  result_data: string | null;
  error: WireError | null;
  created_at: Date;
  completed_at: Date | null;
}

interface UepRow {
  id: string;
  endpoint_id: string;
  identity_id: string;
  config: Record<string, unknown>;
  runtime: UserRuntime | null;
  last_seen: Date | null;
}

const IDENTITY_COLUMNS = "id, username, name, email, organization, identity_provider, created_at";

/**
 * The status the API reports: the last heartbeat's word, and only while the
 * heartbeats keep coming (younger than three periods, on the database clock).
 */
const ENDPOINT_COLUMNS = `e.id, e.owner_id, i.username AS owner_username, e.name, e.display_name, e.multi_user,
  e.allowed_functions, e.metadata, e.last_heartbeat, e.heartbeat_period, e.last_error, e.created_at,
  CASE WHEN e.status = 'online' AND e.heartbeat_period > 0
        AND e.last_heartbeat > now() - make_interval(secs => 3 * e.heartbeat_period)
    THEN 'online' ELSE 'offline' END AS status`;

const FUNCTION_COLUMNS = "id, owner_id, name, payload_strategy, payload_data, payload_sha256, created_at";

const TASK_COLUMNS = `id, owner_id, endpoint_id, uep_id, function_id, task_group_id, state, args_bytes,
  result_strategy, result_data, error, created_at, completed_at`;

/** A list of uuids as one parameter (the same text on both drivers). */
const UUID_LIST = "(SELECT value::uuid FROM jsonb_array_elements_text($1::jsonb))";

export class Store {
  constructor(private readonly sql: SqlClient) {}

  /** Which backend, for logs. */
  get description(): string {
    return this.sql.description;
  }

  close(): Promise<void> {
    return this.sql.close();
  }

  /** Resolves when the database answers a query (readiness). */
  async ping(): Promise<void> {
    await this.sql.query("SELECT 1");
  }

  // ---- metrics (read when /metrics is scraped) ---------------------------------

  countOpenTasks(): Promise<OpenTaskCount[]> {
    return countOpenTasks(this.sql);
  }

  countUeps(recentSeconds: number): Promise<UepCount[]> {
    return countUeps(this.sql, recentSeconds);
  }

  // ---- identities and tokens ------------------------------------------------

  /** Creates the identity, or returns the one that already has this username. */
  async createIdentity(username: string, fields: IdentityFields = {}): Promise<Identity> {
    const identity = (await this.insertIdentity(username, fields)) ?? (await this.findIdentityByUsername(username));
    if (!identity) throw new Error(`Identity ${username} vanished right after it was created.`);
    return identity;
  }

  async getIdentity(id: string): Promise<Identity | undefined> {
    const row = await this.identityRow("id", id);
    return row && toIdentity(row);
  }

  async findIdentityByUsername(username: string): Promise<Identity | undefined> {
    const row = await this.identityRow("username", username);
    return row && toIdentity(row);
  }

  private async identityRow(column: "id" | "username", value: string): Promise<IdentityRow | undefined> {
    const cast = column === "id" ? "::uuid" : "";
    const { rows } = await this.sql.query<IdentityRow>(
      `SELECT ${IDENTITY_COLUMNS} FROM identities WHERE ${column} = $1${cast}`,
      [value],
    );
    return rows[0];
  }

  /**
   * Creates a new token for the identity and returns it; only its hash is
   * stored. With `expiresAt`, it stops working then (null: never).
   */
  async createToken(identityId: string, expiresAt: Date | null = null): Promise<string> {
    const token = generateToken();
    await this.sql.query(
      "INSERT INTO api_tokens (token_sha256, identity_id, expires_at) VALUES ($1, $2::uuid, $3::timestamptz)",
      [hashToken(token), identityId, expiresAt?.toISOString() ?? null],
    );
    return token;
  }

  /** The identity a token belongs to, or undefined for an unknown or expired token. */
  async identityForToken(token: string): Promise<Identity | undefined> {
    const found = await this.lookupToken(token);
    return found && !tokenHasExpired(found.expiresAt) ? found.identity : undefined;
  }

  /** The identity and expiry of a token, expired or not; undefined for an unknown token. */
  async lookupToken(token: string): Promise<TokenIdentity | undefined> {
    const { rows } = await this.sql.query<IdentityRow & { expires_at: Date | null }>(
      `SELECT i.id, i.username, i.name, i.email, i.organization, i.identity_provider, i.created_at, t.expires_at
       FROM api_tokens t JOIN identities i ON i.id = t.identity_id
       WHERE t.token_sha256 = $1`,
      [hashToken(token)],
    );
    return rows[0] && { identity: toIdentity(rows[0]), expiresAt: rows[0].expires_at };
  }

  /** Every identity's tokens (expired ones too), oldest first. */
  async listTokens(): Promise<TokenRecord[]> {
    const { rows } = await this.sql.query<{
      identity_id: string;
      created_at: Date;
      expires_at: Date | null;
      last_used_at: Date | null;
    }>("SELECT identity_id, created_at, expires_at, last_used_at FROM api_tokens ORDER BY created_at, token_sha256");
    return rows.map((r) => ({
      identityId: r.identity_id,
      createdAt: r.created_at,
      expiresAt: r.expires_at,
      lastUsedAt: r.last_used_at,
    }));
  }

  /** Records that a token was used (callers debounce this; it is not on every request). */
  async touchToken(token: string): Promise<void> {
    await this.sql.query("UPDATE api_tokens SET last_used_at = now() WHERE token_sha256 = $1", [hashToken(token)]);
  }

  async tokenLastUsed(token: string): Promise<Date | null | undefined> {
    const { rows } = await this.sql.query<{ last_used_at: Date | null }>(
      "SELECT last_used_at FROM api_tokens WHERE token_sha256 = $1",
      [hashToken(token)],
    );
    return rows[0]?.last_used_at;
  }

  /** Every identity, by username. */
  async listIdentities(): Promise<Identity[]> {
    const { rows } = await this.sql.query<IdentityRow>(`SELECT ${IDENTITY_COLUMNS} FROM identities ORDER BY username`);
    return rows.map(toIdentity);
  }

  /** Creates the identity; undefined when the username is taken (unlike {@link createIdentity}). */
  async insertIdentity(username: string, fields: IdentityFields = {}): Promise<Identity | undefined> {
    const { rows } = await this.sql.query<IdentityRow>(
      `INSERT INTO identities (id, username, name, email, organization, identity_provider)
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
    return rows[0] && toIdentity(rows[0]);
  }

  /** Deletes the identity's tokens but `keep`; returns how many were deleted. */
  async revokeTokensExcept(identityId: string, keep: string): Promise<number> {
    const { rows } = await this.sql.query<{ token_sha256: string }>(
      "DELETE FROM api_tokens WHERE identity_id = $1::uuid AND token_sha256 <> $2 RETURNING token_sha256",
      [identityId, hashToken(keep)],
    );
    return rows.length;
  }

  /** What the identity owns now (on `q`, a transaction's client, when given). */
  async identityHoldings(identityId: string, q: SqlExecutor = this.sql): Promise<IdentityHoldings> {
    const { rows } = await q.query<{
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
  async removeIdentity(identityId: string, force: boolean): Promise<IdentityRemoval> {
    return this.sql.transaction(async (tx) => {
      const holdings = await this.identityHoldings(identityId, tx);
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

  // ---- endpoints ------------------------------------------------------------

  /**
   * Registers a new endpoint or updates a known one of the same owner.
   * Returns undefined when the id belongs to another owner.
   */
  async registerEndpoint(reg: EndpointRegistration): Promise<EndpointRecord | undefined> {
    const { rows } = await this.sql.query<{ id: string }>(
      `INSERT INTO endpoints (id, owner_id, name, display_name, multi_user, allowed_functions, metadata)
       VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6::jsonb, $7::jsonb)
       ON CONFLICT (id) DO UPDATE SET
         name = EXCLUDED.name, display_name = EXCLUDED.display_name, multi_user = EXCLUDED.multi_user,
         allowed_functions = EXCLUDED.allowed_functions, metadata = EXCLUDED.metadata, updated_at = now()
       WHERE endpoints.owner_id = EXCLUDED.owner_id
       RETURNING id`,
      [
        reg.id,
        reg.ownerId,
        reg.name,
        reg.displayName ?? null,
        reg.multiUser ?? false,
        reg.allowedFunctions ? JSON.stringify(reg.allowedFunctions) : null,
        JSON.stringify(reg.metadata ?? {}),
      ],
    );
    return rows[0] && this.getEndpoint(reg.id);
  }

  async getEndpoint(id: string): Promise<EndpointRecord | undefined> {
    const { rows } = await this.sql.query<EndpointRow>(
      `SELECT ${ENDPOINT_COLUMNS} FROM endpoints e JOIN identities i ON i.id = e.owner_id WHERE e.id = $1::uuid`,
      [id],
    );
    return rows[0] && toEndpoint(rows[0]);
  }

  /** The endpoints an identity owns, oldest first. */
  async listEndpoints(ownerId: string): Promise<EndpointRecord[]> {
    const { rows } = await this.sql.query<EndpointRow>(
      `SELECT ${ENDPOINT_COLUMNS} FROM endpoints e JOIN identities i ON i.id = e.owner_id
       WHERE e.owner_id = $1::uuid ORDER BY e.created_at, e.id`,
      [ownerId],
    );
    return rows.map(toEndpoint);
  }

  /**
   * Records a MEP heartbeat: `period` 0 means the MEP is shutting down. An
   * `error` is kept as the endpoint's last error. False for an unknown endpoint.
   */
  async recordEndpointHeartbeat(endpointId: string, period: number, error?: WireError): Promise<boolean> {
    const { rows } = await this.sql.query<{ id: string }>(
      `UPDATE endpoints SET last_heartbeat = now(), heartbeat_period = $2, status = $3,
         last_error = COALESCE($4::jsonb, last_error)
       WHERE id = $1::uuid RETURNING id`,
      [endpointId, period, period > 0 ? "online" : "offline", error ? JSON.stringify(error) : null],
    );
    return rows.length > 0;
  }

  /** Records a UEP heartbeat (its last_seen); an `error` is kept as its endpoint's last error. */
  async recordUepHeartbeat(endpointId: string, uepId: string, error?: WireError): Promise<boolean> {
    const { rows } = await this.sql.query<{ id: string }>(
      "UPDATE ueps SET last_seen = now() WHERE id = $1::uuid AND endpoint_id = $2::uuid RETURNING id",
      [uepId, endpointId],
    );
    if (error) {
      await this.sql.query("UPDATE endpoints SET last_error = $2::jsonb WHERE id = $1::uuid", [
        endpointId,
        JSON.stringify(error),
      ]);
    }
    return rows.length > 0;
  }

  // ---- functions ------------------------------------------------------------

  /** Registers a function; the same payload registered again by the same owner keeps its id. */
  async registerFunction(ownerId: string, payload: Payload, name?: string | null): Promise<FunctionRecord> {
    const digest = sha256Hex(payload.strategy, payload.data);
    const params = [randomUUID(), ownerId, name ?? null, payload.strategy, payload.data, digest];
    const inserted = await this.sql.query<FunctionRow>(
      `INSERT INTO functions (id, owner_id, name, payload_strategy, payload_data, payload_sha256)
       VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6)
       ON CONFLICT (owner_id, payload_sha256) DO NOTHING
       RETURNING ${FUNCTION_COLUMNS}`,
      params,
    );
    if (inserted.rows[0]) return toFunction(inserted.rows[0]);
    const { rows } = await this.sql.query<FunctionRow>(
      `SELECT ${FUNCTION_COLUMNS} FROM functions WHERE owner_id = $1::uuid AND payload_sha256 = $2`,
      [ownerId, digest],
    );
    if (!rows[0]) throw new Error(`Function ${digest} of ${ownerId} vanished right after it was registered.`);
    return toFunction(rows[0]);
  }

  async getFunction(id: string): Promise<FunctionRecord | undefined> {
    return (await this.getFunctions([id]))[0];
  }

  /** The functions among `ids` that exist (one statement). */
  async getFunctions(ids: readonly string[]): Promise<FunctionRecord[]> {
    if (ids.length === 0) return [];
    const { rows } = await this.sql.query<FunctionRow>(
      `SELECT ${FUNCTION_COLUMNS} FROM functions WHERE id IN ${UUID_LIST}`,
      [JSON.stringify(ids)],
    );
    return rows.map(toFunction);
  }

  // ---- tasks ----------------------------------------------------------------

  /**
   * Stores the tasks of one submit in ONE statement, with their task group and
   * UEP when those are new; all or nothing (see insert-tasks.ts).
   */
  insertTasks(batch: TaskBatch): Promise<InsertTasksResult> {
    return insertTasks(this.sql, batch);
  }

  /** `received` → `waiting-for-endpoint` once the tasks are on the broker (one statement). */
  async markTasksWaiting(taskIds: readonly string[]): Promise<void> {
    if (taskIds.length === 0) return;
    await this.sql.query(
      `UPDATE tasks SET state = 'waiting-for-endpoint' WHERE id IN ${UUID_LIST} AND state = 'received'`,
      [JSON.stringify(taskIds)],
    );
  }

  /**
   * → `running` for tasks a UEP of their endpoint took, unless they moved on
   * already, and only when reported by an account allowed to (see
   * {@link ReportSender}; one statement). Returns how many changed, and the
   * reports refused for their sender (a known task of that endpoint, the wrong account).
   */
  async markTasksRunning(
    items: ReadonlyArray<{ taskId: string; endpointId: string } & ReportSender>,
  ): Promise<{ changed: number; refused: Array<{ taskId: string; sender: string }> }> {
    if (items.length === 0) return { changed: 0, refused: [] };
    const input = items.map((i) => ({
      id: i.taskId,
      endpoint_id: i.endpointId,
      sender: i.sender,
      shared: i.sharedAccount === true,
    }));
    const { rows } = await this.sql.query<{ id: string; sender: string; allowed: boolean; updated: boolean }>(
      `WITH input AS (
         SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, endpoint_id uuid, sender text, shared boolean)
       ),
       checked AS (
         SELECT i.id, i.sender, ${SENDER_ALLOWED} AS allowed
         FROM input i JOIN tasks t ON t.id = i.id AND t.endpoint_id = i.endpoint_id
       ),
       updated AS (
         UPDATE tasks t SET state = 'running'
         FROM checked c
         WHERE t.id = c.id AND c.allowed AND t.state IN ${NOT_STARTED_STATES}
         RETURNING t.id
       )
       SELECT c.id, c.sender, c.allowed, (u.id IS NOT NULL) AS updated
       FROM checked c LEFT JOIN (SELECT DISTINCT id FROM updated) u ON u.id = c.id`,
      [JSON.stringify(dedupeBySender(input)), uepBrokerUser(""), endpointBrokerUser("")],
    );
    return {
      changed: new Set(rows.filter((r) => r.updated).map((r) => r.id)).size,
      refused: rows.filter((r) => !r.allowed).map((r) => ({ taskId: r.id, sender: r.sender })),
    };
  }

  /**
   * Stores results in one statement. A result for a task that is already
   * terminal changes nothing (re-runs and redeliveries happen); one for an
   * unknown task, or reported by another endpoint than the task's, is left out
   * of the answer; one from an account not allowed to report the task (see
   * {@link ReportSender}) changes nothing and is answered `refused`.
   */
  async storeResults(results: readonly TaskResultInput[]): Promise<StoredResult[]> {
    if (results.length === 0) return [];
    const input = results.map((r) => ({
      id: r.taskId,
      endpoint_id: r.endpointId,
      sender: r.sender,
      shared: r.sharedAccount === true,
      state: r.state,
      result_strategy: r.result?.strategy ?? null,
      result_data: r.result?.data ?? null,
      error: r.error ?? null,
      completed_at: r.completedAt,
    }));
    const { rows } = await this.sql.query<{
      id: string;
      sender: string;
      task_group_id: string;
      allowed: boolean;
      updated: boolean;
      state: TaskState;
    }>(
      `WITH input AS (
         SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, endpoint_id uuid, sender text, shared boolean,
           state text, result_strategy text, result_data text, error jsonb, completed_at double precision)
       ),
       checked AS (
         SELECT i.*, t.task_group_id, t.state AS old_state, ${SENDER_ALLOWED} AS allowed
         FROM input i JOIN tasks t ON t.id = i.id AND t.endpoint_id = i.endpoint_id
       ),
       updated AS (
         UPDATE tasks t SET state = c.state, result_strategy = c.result_strategy, result_data = c.result_data,
           error = c.error, completed_at = to_timestamp(c.completed_at / 1000.0)
         FROM checked c
         WHERE t.id = c.id AND c.allowed AND t.state NOT IN ${TERMINAL_STATES}
         RETURNING t.id, c.sender, c.state
       )
       SELECT c.id, c.sender, c.task_group_id, c.allowed, (u.id IS NOT NULL AND u.sender = c.sender) AS updated,
         COALESCE(u.state, c.old_state) AS state
       FROM checked c LEFT JOIN updated u ON u.id = c.id`,
      [JSON.stringify(dedupeBySender(input)), uepBrokerUser(""), endpointBrokerUser("")],
    );
    return rows.map((r) => ({
      taskId: r.id,
      taskGroupId: r.task_group_id,
      sender: r.sender,
      refused: !r.allowed,
      updated: r.updated,
      state: r.state,
    }));
  }

  async getTask(id: string): Promise<TaskRecord | undefined> {
    const [row] = await this.getTaskRows([id]);
    return row && toTask(row);
  }

  /** The tasks among `ids` that exist (one statement). */
  async getTasks(ids: readonly string[]): Promise<TaskRecord[]> {
    return (await this.getTaskRows(ids)).map(toTask);
  }

  private async getTaskRows(ids: readonly string[]): Promise<TaskRow[]> {
    if (ids.length === 0) return [];
    const { rows } = await this.sql.query<TaskRow>(`SELECT ${TASK_COLUMNS} FROM tasks WHERE id IN ${UUID_LIST}`, [
      JSON.stringify(ids),
    ]);
    return rows;
  }

  // ---- task groups and UEPs ---------------------------------------------------

  /** The owner of a task group, or undefined when it does not exist. */
  async taskGroupOwner(id: string): Promise<string | undefined> {
    const { rows } = await this.sql.query<{ owner_id: string }>(
      "SELECT owner_id FROM task_groups WHERE id = $1::uuid",
      [id],
    );
    return rows[0]?.owner_id;
  }

  async getUep(id: string): Promise<UepRecord | undefined> {
    const { rows } = await this.sql.query<UepRow>(
      "SELECT id, endpoint_id, identity_id, config, runtime, last_seen FROM ueps WHERE id = $1::uuid",
      [id],
    );
    const row = rows[0];
    return (
      row && {
        id: row.id,
        endpointId: row.endpoint_id,
        identityId: row.identity_id,
        config: row.config,
        runtime: row.runtime,
        lastSeen: row.last_seen,
      }
    );
  }

  // --- routes: task groups, cancel, deletes ---

  /**
   * In ONE statement: `received` or `waiting-for-endpoint` → `cancelled` (with
   * `error`), only for the owner. Undefined for an unknown task; otherwise the
   * task as it is now and whether this call cancelled it.
   */
  async cancelTask(taskId: string, ownerId: string, error: WireError): Promise<TaskCancellation | undefined> {
    const { rows } = await this.sql.query<TaskRow & { cancelled: boolean }>(
      `WITH cancelled AS (
         UPDATE tasks SET state = 'cancelled', error = $3::jsonb, completed_at = now()
         WHERE id = $1::uuid AND owner_id = $2::uuid AND state IN ${NOT_STARTED_STATES}
         RETURNING ${TASK_COLUMNS}
       )
       SELECT c.*, true AS cancelled FROM cancelled c
       UNION ALL
       SELECT ${TASK_COLUMNS}, false AS cancelled FROM tasks
       WHERE id = $1::uuid AND NOT EXISTS (SELECT 1 FROM cancelled)`,
      [taskId, ownerId, JSON.stringify(error)],
    );
    const row = rows[0];
    return row && { task: toTask(row), cancelled: row.cancelled };
  }

  /** The owner's task groups, oldest first, with their tasks counted per state. */
  async listTaskGroups(ownerId: string): Promise<TaskGroupRecord[]> {
    const { rows } = await this.sql.query<TaskGroupRow>(
      `${TASK_GROUP_SELECT} WHERE g.owner_id = $1::uuid GROUP BY g.id, g.owner_id, g.created_at
       ORDER BY g.created_at, g.id`,
      [ownerId],
    );
    return rows.map(toTaskGroup);
  }

  /** A task group with its counts and its tasks not yet terminal, or undefined. */
  async getTaskGroup(id: string): Promise<(TaskGroupRecord & { pending: TaskRecord[] }) | undefined> {
    const { rows } = await this.sql.query<TaskGroupRow>(
      `${TASK_GROUP_SELECT} WHERE g.id = $1::uuid GROUP BY g.id, g.owner_id, g.created_at`,
      [id],
    );
    if (!rows[0]) return undefined;
    const pending = await this.sql.query<TaskRow>(
      `SELECT ${TASK_COLUMNS} FROM tasks
       WHERE task_group_id = $1::uuid AND state NOT IN ${TERMINAL_STATES}
       ORDER BY created_at, id`,
      [id],
    );
    return { ...toTaskGroup(rows[0]), pending: pending.rows.map(toTask) };
  }

  /** Deletes the owner's function; false when there is no such function of this owner. Its tasks stay as history. */
  async deleteFunction(id: string, ownerId: string): Promise<boolean> {
    const { rows } = await this.sql.query<{ id: string }>(
      "DELETE FROM functions WHERE id = $1::uuid AND owner_id = $2::uuid RETURNING id",
      [id, ownerId],
    );
    return rows.length > 0;
  }

  /**
   * Deletes the owner's endpoint and its UEPs in one transaction; its tasks stay
   * as history. Unless `force`, an endpoint with tasks not yet terminal is kept
   * (`deleted: false`, with their count); with `force`, those tasks are failed
   * with `error` and returned, so their submitters can be told.
   */
  async deleteEndpoint(id: string, ownerId: string, force: boolean, error: WireError): Promise<EndpointDeletion> {
    return this.sql.transaction(async (tx) => {
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

  // --- service secret (broker accounts) ---

  /**
   * The secret called `name`, made by `generate` the first time any replica
   * asks. Insert-if-absent, then read in a second statement (which sees a row a
   * concurrent replica committed meanwhile), so replicas starting together agree.
   */
  async serviceSecret(name: string, generate: () => string): Promise<string> {
    await this.sql.query("INSERT INTO service_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", [
      name,
      generate(),
    ]);
    const { rows } = await this.sql.query<{ value: string }>("SELECT value FROM service_secrets WHERE name = $1", [
      name,
    ]);
    if (!rows[0]) throw new Error(`Service secret ${name} vanished right after it was created.`);
    return rows[0].value;
  }

  /**
   * The groups among `taskGroupIds` that were created, or got a task, within
   * the last `withinMs` (database clock); unknown ids are left out.
   */
  async recentTaskGroups(taskGroupIds: readonly string[], withinMs: number): Promise<Set<string>> {
    if (taskGroupIds.length === 0) return new Set();
    const { rows } = await this.sql.query<{ id: string }>(
      `SELECT g.id FROM task_groups g
       WHERE g.id IN ${UUID_LIST}
         AND (g.created_at > now() - make_interval(secs => $2::double precision)
           OR EXISTS (SELECT 1 FROM tasks t WHERE t.task_group_id = g.id
             AND t.created_at > now() - make_interval(secs => $2::double precision)))`,
      [JSON.stringify(taskGroupIds), withinMs / 1000],
    );
    return new Set(rows.map((r) => r.id));
  }

  /**
   * Seconds since each UEP's last heartbeat (database clock): null for a UEP
   * that never sent one; unknown ids are left out.
   */
  async uepHeartbeatAges(uepIds: readonly string[]): Promise<Map<string, number | null>> {
    if (uepIds.length === 0) return new Map();
    const { rows } = await this.sql.query<{ id: string; age: number | null }>(
      `SELECT id, EXTRACT(EPOCH FROM now() - last_seen)::double precision AS age FROM ueps WHERE id IN ${UUID_LIST}`,
      [JSON.stringify(uepIds)],
    );
    return new Map(rows.map((r) => [r.id, r.age === null ? null : Number(r.age)]));
  }
}

/** What {@link Store.cancelTask} found and did. */
export interface TaskCancellation {
  /** The task after the call. */
  task: TaskRecord;
  /** True when this call moved it to `cancelled`. */
  cancelled: boolean;
}

/** What {@link Store.deleteEndpoint} did. */
export interface EndpointDeletion {
  deleted: boolean;
  /** Tasks of the endpoint not yet terminal when it was asked. */
  activeTasks: number;
  /** Tasks failed by a forced delete. */
  failed: TaskRecord[];
}

export interface TaskGroupRecord {
  id: string;
  ownerId: string;
  createdAt: Date;
  /** Tasks per state (states with at least one task). */
  taskCounts: Partial<Record<TaskState, number>>;
}

interface TaskGroupRow {
  id: string;
  owner_id: string;
  created_at: Date;
  task_counts: Record<string, number>;
}

const TASK_GROUP_SELECT = `SELECT g.id, g.owner_id, g.created_at,
  COALESCE(jsonb_object_agg(c.state, c.n) FILTER (WHERE c.state IS NOT NULL), '{}'::jsonb) AS task_counts
  FROM task_groups g
  LEFT JOIN LATERAL (SELECT state, count(*)::int AS n FROM tasks t WHERE t.task_group_id = g.id GROUP BY state) c
    ON true`;

function toTaskGroup(row: TaskGroupRow): TaskGroupRecord {
  const taskCounts: Partial<Record<TaskState, number>> = {};
  for (const [state, n] of Object.entries(row.task_counts)) taskCounts[state as TaskState] = Number(n);
  return { id: row.id, ownerId: row.owner_id, createdAt: row.created_at, taskCounts };
}

/** Two results for one task in a batch (a redelivery): the first one counts. */
/**
 * One item per (task, sender): a copy from the same account adds nothing, but
 * a report from another account must not hide the allowed one behind it.
 */
function dedupeBySender<T extends { id: string; sender: string }>(items: T[]): T[] {
  const seen = new Set<string>();
  return items.filter((item) => {
    const key = `${item.id} ${item.sender}`;
    return !seen.has(key) && seen.add(key);
  });
}

/**
 * Whether input row `i`, joined with its task `t`, comes from an account
 * allowed to report the task: the shared account, or (`$2` and `$3` being the
 * UEP and endpoint account prefixes) the account of the UEP the task was
 * routed to, or of the endpoint it was submitted to (an MEP fails tasks itself).
 */
const SENDER_ALLOWED =
  "COALESCE(i.shared OR i.sender = $2 || t.uep_id::text OR i.sender = $3 || t.endpoint_id::text, false)";

function toIdentity(row: IdentityRow): Identity {
  return {
    id: row.id,
    username: row.username,
    name: row.name,
    email: row.email,
    organization: row.organization,
    identityProvider: row.identity_provider,
    createdAt: row.created_at,
  };
}

function toEndpoint(row: EndpointRow): EndpointRecord {
  return {
    id: row.id,
    ownerId: row.owner_id,
    ownerUsername: row.owner_username,
    name: row.name,
    displayName: row.display_name,
    multiUser: row.multi_user,
    allowedFunctions: row.allowed_functions,
    metadata: row.metadata,
    status: row.status,
    lastHeartbeat: row.last_heartbeat,
    heartbeatPeriod: Number(row.heartbeat_period),
    lastError: row.last_error,
    createdAt: row.created_at,
  };
}

function toFunction(row: FunctionRow): FunctionRecord {
  return {
    id: row.id,
    ownerId: row.owner_id,
    name: row.name,
    payload: { strategy: row.payload_strategy, data: row.payload_data },
    payloadSha256: row.payload_sha256,
    createdAt: row.created_at,
  };
}

function toTask(row: TaskRow): TaskRecord {
  return {
    id: row.id,
    ownerId: row.owner_id,
    endpointId: row.endpoint_id,
    uepId: row.uep_id,
    functionId: row.function_id,
    taskGroupId: row.task_group_id,
    state: row.state,
    argsBytes: Number(row.args_bytes),
    result: row.result_strategy !== null ? { strategy: row.result_strategy, data: row.result_data ?? "" } : null,
    error: row.error,
    createdAt: row.created_at,
    completedAt: row.completed_at,
  };
}
