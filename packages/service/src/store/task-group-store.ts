/**
 * Task groups: created with their first tasks (see insert-tasks.ts), read with
 * their tasks counted per state.
 */
import type { SqlExecutor } from "./sql-client.js";
import { selectList, UUID_LIST } from "./sql-select.js";
import type { TaskGroupRecord, TaskRecord } from "./store-types.js";
import { TERMINAL_STATES } from "./task-state-sql.js";
import { TASK_COLUMNS, type TaskRow, toTask } from "./task-store.js";

/** The groups of `task_groups g` that match `where`, with their tasks counted per state. */
function selectTaskGroups(where: string): string {
  const columns = selectList<TaskGroupRecord>({
    id: "g.id",
    ownerId: "g.owner_id",
    createdAt: "g.created_at",
    taskCounts: "COALESCE(jsonb_object_agg(c.state, c.n) FILTER (WHERE c.state IS NOT NULL), '{}'::jsonb)",
  });
  return `SELECT ${columns}
  FROM task_groups g
  LEFT JOIN LATERAL (SELECT state, count(*)::int AS n FROM tasks t WHERE t.task_group_id = g.id GROUP BY state) c
    ON true
  WHERE ${where} GROUP BY g.id, g.owner_id, g.created_at`;
}

/** The owner of a task group, or undefined when it does not exist. */
export async function taskGroupOwner(sql: SqlExecutor, id: string): Promise<string | undefined> {
  const { rows } = await sql.query<{ owner_id: string }>("SELECT owner_id FROM task_groups WHERE id = $1::uuid", [id]);
  return rows[0]?.owner_id;
}

/** The owner's task groups, oldest first, with their tasks counted per state. */
export async function listTaskGroups(sql: SqlExecutor, ownerId: string): Promise<TaskGroupRecord[]> {
  const { rows } = await sql.query<TaskGroupRecord>(
    `${selectTaskGroups("g.owner_id = $1::uuid")} ORDER BY g.created_at, g.id`,
    [ownerId],
  );
  return rows;
}

/** A task group with its counts and its tasks not yet terminal, or undefined. */
export async function getTaskGroup(
  sql: SqlExecutor,
  id: string,
): Promise<(TaskGroupRecord & { pending: TaskRecord[] }) | undefined> {
  const { rows } = await sql.query<TaskGroupRecord>(selectTaskGroups("g.id = $1::uuid"), [id]);
  if (!rows[0]) return undefined;
  const pending = await sql.query<TaskRow>(
    `SELECT ${TASK_COLUMNS} FROM tasks
     WHERE task_group_id = $1::uuid AND state NOT IN ${TERMINAL_STATES}
     ORDER BY created_at, id`,
    [id],
  );
  return { ...rows[0], pending: pending.rows.map(toTask) };
}

/**
 * The groups among `taskGroupIds` that were created, or got a task, within
 * the last `withinMs` (database clock); unknown ids are left out.
 */
export async function recentTaskGroups(
  sql: SqlExecutor,
  taskGroupIds: readonly string[],
  withinMs: number,
): Promise<Set<string>> {
  if (taskGroupIds.length === 0) return new Set();
  const { rows } = await sql.query<{ id: string }>(
    `SELECT g.id FROM task_groups g
     WHERE g.id IN ${UUID_LIST}
       AND (g.created_at > now() - make_interval(secs => $2::double precision)
         OR EXISTS (SELECT 1 FROM tasks t WHERE t.task_group_id = g.id
           AND t.created_at > now() - make_interval(secs => $2::double precision)))`,
    [JSON.stringify(taskGroupIds), withinMs / 1000],
  );
  return new Set(rows.map((r) => r.id));
}
