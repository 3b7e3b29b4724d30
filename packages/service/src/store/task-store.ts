/**
 * Tasks as the submitter sees them: reading them, `received` →
 * `waiting-for-endpoint` once they are on the broker, and cancelling one.
 * Inserting is insert-tasks.ts; the reports endpoints send, task-reports.ts.
 */
import type { WireError } from "@conduit/protocol";
import type { SqlExecutor } from "./sql-client.js";
import { selectList, UUID_LIST } from "./sql-select.js";
import type { TaskCancellation, TaskRecord } from "./store-types.js";
import { NOT_STARTED_STATES } from "./task-state-sql.js";

/** A task as selected: its result in two columns. */
export type TaskRow = Omit<TaskRecord, "result"> & { resultStrategy: string | null; resultData: string | null };

/** A task's columns, unqualified (from `tasks`, or a statement's `RETURNING`). */
export const TASK_COLUMNS = selectList<TaskRow>({
  id: "id",
  ownerId: "owner_id",
  endpointId: "endpoint_id",
  uepId: "uep_id",
  functionId: "function_id",
  taskGroupId: "task_group_id",
  state: "state",
  argsBytes: "args_bytes",
  resultStrategy: "result_strategy",
  resultData: "result_data",
  error: "error",
  createdAt: "created_at",
  completedAt: "completed_at",
});

export function toTask({ resultStrategy, resultData, ...row }: TaskRow): TaskRecord {
  return { ...row, result: resultStrategy !== null ? { strategy: resultStrategy, data: resultData ?? "" } : null };
}

/** The tasks among `ids` that exist (one statement). */
export async function getTasks(sql: SqlExecutor, ids: readonly string[]): Promise<TaskRecord[]> {
  if (ids.length === 0) return [];
  const { rows } = await sql.query<TaskRow>(`SELECT ${TASK_COLUMNS} FROM tasks WHERE id IN ${UUID_LIST}`, [
    JSON.stringify(ids),
  ]);
  return rows.map(toTask);
}

/** `received` → `waiting-for-endpoint` once the tasks are on the broker (one statement). */
export async function markTasksWaiting(sql: SqlExecutor, taskIds: readonly string[]): Promise<void> {
  if (taskIds.length === 0) return;
  await sql.query(
    `UPDATE tasks SET state = 'waiting-for-endpoint', waiting_at = now() WHERE id IN ${UUID_LIST} AND state = 'received'`,
    [JSON.stringify(taskIds)],
  );
}

/**
 * In ONE statement: `received` or `waiting-for-endpoint` → `cancelled` (with
 * `error`), only for the owner. Undefined for an unknown task; otherwise the
 * task as it is now and whether this call cancelled it.
 */
export async function cancelTask(
  sql: SqlExecutor,
  taskId: string,
  ownerId: string,
  error: WireError,
): Promise<TaskCancellation | undefined> {
  const { rows } = await sql.query<TaskRow & { cancelled: boolean }>(
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
  if (!rows[0]) return undefined;
  const { cancelled, ...task } = rows[0];
  return { task: toTask(task), cancelled };
}
