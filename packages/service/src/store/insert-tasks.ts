/**
 * The submit's one statement: stores the tasks of one submit, with their task
 * group and UEP when those are new. All or nothing: when a task id is already
 * used by another owner, endpoint, UEP, function, arguments or (when the SDK
 * named one) task group, or the task group belongs to another owner, nothing is
 * stored and the conflict is returned. A task id already stored by the same
 * submit is an idempotent retry: reported in `existing`, stored once.
 * A batch being published while it is stored (`published`) is stored
 * `waiting-for-endpoint` directly, and so are its known tasks still
 * `received` (a submit that stored them but never published them): the
 * submit needs no second statement.
 */
import type { TaskState } from "@conduit/protocol";
import type { SqlExecutor } from "./sql-client.js";
import { UUID_LIST } from "./sql-select.js";
import type { InsertTasksResult, TaskBatch } from "./store-types.js";

/** What identifies a stored task, to compare with a task submitted again. */
interface StoredTaskKey {
  owner_id: string;
  endpoint_id: string;
  uep_id: string;
  function_id: string;
  args_sha256: string;
  task_group_id: string;
  state: TaskState;
}

interface Row {
  id: string;
  inserted: boolean;
  function_id: string;
  args_sha256: string;
  /** The stored task with this id, when there was one before this statement. */
  existing: StoredTaskKey | null;
  group_conflict: boolean;
}

const INSERT_TASKS = `
WITH input AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, function_id uuid, args_bytes integer, args_sha256 text)
),
existing AS (
  SELECT t.* FROM tasks t WHERE t.id IN (SELECT id FROM input)
),
group_conflict AS (
  SELECT 1 FROM task_groups WHERE id = $5::uuid AND owner_id <> $2::uuid
),
task_conflict AS (
  SELECT e.id FROM existing e JOIN input i ON i.id = e.id
  WHERE e.owner_id <> $2::uuid OR e.endpoint_id <> $3::uuid OR e.uep_id <> $4::uuid
     OR e.function_id <> i.function_id OR e.args_sha256 <> i.args_sha256
     OR ($6::boolean AND e.task_group_id <> $5::uuid)
),
new_tasks AS (
  SELECT i.* FROM input i
  WHERE i.id NOT IN (SELECT id FROM existing)
    AND NOT EXISTS (SELECT 1 FROM group_conflict) AND NOT EXISTS (SELECT 1 FROM task_conflict)
),
new_group AS (
  INSERT INTO task_groups (id, owner_id) SELECT $5::uuid, $2::uuid WHERE EXISTS (SELECT 1 FROM new_tasks)
  ON CONFLICT (id) DO NOTHING
),
new_uep AS (
  INSERT INTO ueps (id, endpoint_id, identity_id, config, runtime)
  SELECT $4::uuid, $3::uuid, $2::uuid, $7::jsonb, $8::jsonb WHERE EXISTS (SELECT 1 FROM new_tasks)
  ON CONFLICT (id) DO NOTHING
),
republished AS (
  UPDATE tasks SET state = 'waiting-for-endpoint', waiting_at = now()
  WHERE $9::boolean AND id IN (SELECT id FROM existing WHERE state = 'received')
    AND NOT EXISTS (SELECT 1 FROM group_conflict) AND NOT EXISTS (SELECT 1 FROM task_conflict)
),
inserted AS (
  INSERT INTO tasks (id, owner_id, endpoint_id, uep_id, function_id, task_group_id, state, waiting_at, args_bytes,
    args_sha256)
  SELECT id, $2::uuid, $3::uuid, $4::uuid, function_id, $5::uuid,
    CASE WHEN $9::boolean THEN 'waiting-for-endpoint' ELSE 'received' END, CASE WHEN $9::boolean THEN now() END,
    args_bytes, args_sha256
  FROM new_tasks
  ON CONFLICT (id) DO NOTHING
  RETURNING id
)
SELECT i.id, i.function_id, i.args_sha256, (ins.id IS NOT NULL) AS inserted,
  CASE WHEN e.id IS NULL THEN NULL ELSE jsonb_build_object(
    'owner_id', e.owner_id, 'endpoint_id', e.endpoint_id, 'uep_id', e.uep_id, 'function_id', e.function_id,
    'args_sha256', e.args_sha256, 'task_group_id', e.task_group_id, 'state', e.state) END AS existing,
  EXISTS (SELECT 1 FROM group_conflict) AS group_conflict
FROM input i LEFT JOIN inserted ins ON ins.id = i.id LEFT JOIN existing e ON e.id = i.id`;

export async function insertTasks(sql: SqlExecutor, batch: TaskBatch): Promise<InsertTasksResult> {
  const input = batch.tasks.map((t) => ({
    id: t.id,
    function_id: t.functionId,
    args_bytes: t.argsBytes,
    args_sha256: t.argsSha256,
  }));
  // Data-modifying CTEs all see the snapshot taken before the statement, so
  // `existing` holds the tasks stored by earlier submits only.
  const { rows } = await sql.query<Row>(INSERT_TASKS, [
    JSON.stringify(input),
    batch.ownerId,
    batch.endpointId,
    batch.uepId,
    batch.taskGroupId,
    batch.taskGroupGiven,
    JSON.stringify(batch.uepConfig),
    batch.uepRuntime ? JSON.stringify(batch.uepRuntime) : null,
    batch.published === true,
  ]);
  if (rows.some((r) => r.group_conflict)) return { ok: false, taskGroupConflict: true };

  for (const row of rows) {
    const reason = row.existing && conflictReason(batch, row, row.existing);
    if (reason)
      return {
        ok: false,
        taskGroupConflict: false,
        conflict: { taskId: row.id, reason },
        otherUeps: otherUeps(batch, rows),
      };
  }

  // No conflict, so every task was inserted or seen, unless a concurrent
  // submit stored it after this statement's snapshot: look at those now.
  const raced = rows.filter((r) => !r.inserted && r.existing === null);
  if (raced.length > 0) {
    const { rows: stored } = await sql.query<StoredTaskKey & { id: string }>(
      `SELECT id, owner_id, endpoint_id, uep_id, function_id, args_sha256, task_group_id, state
       FROM tasks WHERE id IN ${UUID_LIST}`,
      [JSON.stringify(raced.map((r) => r.id))],
    );
    const byId = new Map(stored.map((t) => [t.id, t]));
    for (const row of raced) {
      row.existing = byId.get(row.id) ?? null;
      const reason = row.existing ? conflictReason(batch, row, row.existing) : "by a submit that did not complete";
      if (reason) {
        return {
          ok: false,
          taskGroupConflict: false,
          conflict: { taskId: row.id, reason },
          otherUeps: otherUeps(batch, rows),
        };
      }
    }
  }

  const inserted: string[] = [];
  const existing: Array<{ taskId: string; state: TaskState; taskGroupId: string }> = [];
  for (const row of rows) {
    if (row.inserted) inserted.push(row.id);
    else existing.push({ taskId: row.id, state: row.existing!.state, taskGroupId: row.existing!.task_group_id });
  }
  return { ok: true, inserted, existing };
}

/** The batch's task ids already stored for another UEP. */
function otherUeps(batch: TaskBatch, rows: Row[]): string[] {
  return rows.filter((r) => r.existing !== null && r.existing.uep_id !== batch.uepId).map((r) => r.id);
}

/** Why a stored task is not the one submitted now (completes "Task id X is already used …"), or undefined. */
function conflictReason(batch: TaskBatch, submitted: Row, stored: StoredTaskKey): string | undefined {
  if (stored.owner_id !== batch.ownerId) return "by another identity";
  if (stored.endpoint_id !== batch.endpointId) return `for a task on endpoint ${stored.endpoint_id}`;
  if (stored.function_id !== submitted.function_id || stored.args_sha256 !== submitted.args_sha256) {
    return "for a task with another function or other arguments";
  }
  if (stored.uep_id !== batch.uepId) return "for a task with another user endpoint configuration or runtime";
  if (batch.taskGroupGiven && stored.task_group_id !== batch.taskGroupId) {
    return `in task group ${stored.task_group_id}`;
  }
  return undefined;
}
