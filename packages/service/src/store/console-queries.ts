/**
 * What the web console reads beyond the REST API's queries: an owner's tasks
 * of one endpoint (filtered), a task's state times, an endpoint's UEPs, an
 * owner's functions, and the live figures of its charts. Every query is
 * scoped to the viewer the way the REST routes are: tasks, groups and
 * functions by their owner.
 */
import type { EngineStatusReport, TaskState } from "@conduit/protocol";
import type { SqlExecutor, SqlParam } from "./sql-client.js";
import { selectList } from "./sql-select.js";
import type { TaskRecord } from "./store-types.js";
import { NOT_STARTED_STATES, TERMINAL_STATES } from "./task-state-sql.js";
import { TASK_COLUMNS, type TaskRow, toTask } from "./task-store.js";

/** Which of an owner's tasks a listing shows; absent fields do not filter. */
export interface TaskFilter {
  ownerId: string;
  endpointId?: string;
  taskGroupId?: string;
  state?: TaskState;
  functionId?: string;
  /** @default 100 */
  limit?: number;
}

/** A task with the times it reached each state (null: not reached, or before these were recorded). */
export interface TaskTimeline extends TaskRecord {
  waitingAt: Date | null;
  runningAt: Date | null;
}

/** A UEP as the console lists it: whose it is, and its unfinished tasks. */
export interface UepSummary {
  id: string;
  username: string;
  config: Record<string, unknown>;
  createdAt: Date;
  lastSeen: Date | null;
  /** Its engine (workers, blocks) as its last heartbeat reported it; null before one did. */
  engine: EngineStatusReport | null;
  waiting: number;
  running: number;
}

export interface FunctionSummary {
  id: string;
  name: string | null;
  strategy: string;
  createdAt: Date;
}

/** One point of an endpoint's live charts, for one viewer's tasks. */
export interface LiveFigures {
  /** Tasks finished in the window. */
  finished: number;
  /** Tasks not yet taken by a UEP. */
  queued: number;
  running: number;
  /** Submit-to-result seconds of the tasks finished in the window; null with none. */
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

export async function listTasks(sql: SqlExecutor, filter: TaskFilter): Promise<TaskRecord[]> {
  const where = ["owner_id = $1::uuid"];
  const params: SqlParam[] = [filter.ownerId];
  const add = (column: string, value: string | undefined, cast = "::uuid") => {
    if (value === undefined) return;
    params.push(value);
    where.push(`${column} = $${params.length}${cast}`);
  };
  add("endpoint_id", filter.endpointId);
  add("task_group_id", filter.taskGroupId);
  add("function_id", filter.functionId);
  add("state", filter.state, "");
  params.push(filter.limit ?? 100);
  const { rows } = await sql.query<TaskRow>(
    `SELECT ${TASK_COLUMNS} FROM tasks WHERE ${where.join(" AND ")}
     ORDER BY created_at DESC, id LIMIT $${params.length}`,
    params,
  );
  return rows.map(toTask);
}

export async function taskTimeline(sql: SqlExecutor, id: string): Promise<TaskTimeline | undefined> {
  const { rows } = await sql.query<TaskRow & { waitingAt: Date | null; runningAt: Date | null }>(
    `SELECT ${TASK_COLUMNS}, waiting_at AS "waitingAt", running_at AS "runningAt" FROM tasks WHERE id = $1::uuid`,
    [id],
  );
  if (!rows[0]) return undefined;
  const { waitingAt, runningAt, ...task } = rows[0];
  return { ...toTask(task), waitingAt, runningAt };
}

/** The UEPs of an endpoint, newest first; only `identityId`'s when given. */
export async function listUeps(
  sql: SqlExecutor,
  endpointId: string,
  identityId: string | undefined,
): Promise<UepSummary[]> {
  const columns = selectList<UepSummary>({
    id: "u.id",
    username: "i.username",
    config: "u.config",
    createdAt: "u.created_at",
    lastSeen: "u.last_seen",
    engine: "u.engine",
    waiting: `(SELECT count(*)::int FROM tasks t WHERE t.uep_id = u.id AND t.state IN ${NOT_STARTED_STATES})`,
    running: "(SELECT count(*)::int FROM tasks t WHERE t.uep_id = u.id AND t.state = 'running')",
  });
  const { rows } = await sql.query<UepSummary>(
    `SELECT ${columns} FROM ueps u JOIN identities i ON i.id = u.identity_id
     WHERE u.endpoint_id = $1::uuid AND ($2::uuid IS NULL OR u.identity_id = $2::uuid)
     ORDER BY u.created_at DESC, u.id`,
    [endpointId, identityId ?? null],
  );
  return rows;
}

export async function listFunctions(sql: SqlExecutor, ownerId: string): Promise<FunctionSummary[]> {
  const columns = selectList<FunctionSummary>({
    id: "id",
    name: "name",
    strategy: "payload_strategy",
    createdAt: "created_at",
  });
  const { rows } = await sql.query<FunctionSummary>(
    `SELECT ${columns} FROM functions WHERE owner_id = $1::uuid ORDER BY created_at DESC, id`,
    [ownerId],
  );
  return rows;
}

/**
 * The live figures of an owner's tasks on one endpoint: what finished in the
 * last `windowSeconds` (count and latency percentiles), what waits and runs now.
 */
export async function liveFigures(
  sql: SqlExecutor,
  ownerId: string,
  endpointId: string,
  windowSeconds: number,
): Promise<LiveFigures> {
  const { rows } = await sql.query<{ finished: number; queued: number; running: number; p: number[] | null }>(
    `WITH recent AS (
       SELECT state, EXTRACT(EPOCH FROM completed_at - created_at)::double precision AS latency,
         completed_at > now() - make_interval(secs => $3::double precision) AS finished
       FROM tasks
       WHERE owner_id = $1::uuid AND endpoint_id = $2::uuid
         AND (state NOT IN ${TERMINAL_STATES} OR completed_at > now() - make_interval(secs => $3::double precision))
     )
     SELECT count(*) FILTER (WHERE finished)::int AS finished,
       count(*) FILTER (WHERE state IN ${NOT_STARTED_STATES})::int AS queued,
       count(*) FILTER (WHERE state = 'running')::int AS running,
       percentile_cont(ARRAY[0.5, 0.95, 0.99]::double precision[]) WITHIN GROUP (ORDER BY latency)
         FILTER (WHERE finished) AS p
     FROM recent`,
    [ownerId, endpointId, windowSeconds],
  );
  const row = rows[0];
  const p = row?.p ?? null;
  return {
    finished: Number(row?.finished ?? 0),
    queued: Number(row?.queued ?? 0),
    running: Number(row?.running ?? 0),
    p50: p ? Number(p[0]) : null,
    p95: p ? Number(p[1]) : null,
    p99: p ? Number(p[2]) : null,
  };
}
