/**
 * What endpoints report about tasks: a UEP took them (`running`), or their
 * results. Each batch is one statement, and only an account allowed to report
 * a task changes it (see {@link ReportSender}).
 */
import { endpointBrokerUser, uepBrokerUser } from "@conduit/protocol";
import type { SqlExecutor } from "./sql-client.js";
import type { ReportSender, StoredResult, TaskResultInput } from "./store-types.js";
import { NOT_STARTED_STATES, TERMINAL_STATES } from "./task-state-sql.js";

/**
 * Whether input row `i`, joined with its task `t`, comes from an account
 * allowed to report the task: the shared account, or (`$2` and `$3` being the
 * UEP and endpoint account prefixes) the account of the UEP the task was
 * routed to, or of the endpoint it was submitted to (an MEP fails tasks itself).
 */
const SENDER_ALLOWED =
  "COALESCE(i.shared OR i.sender = $2 || t.uep_id::text OR i.sender = $3 || t.endpoint_id::text, false)";

/**
 * The parameters of a report statement: `$1` the reports, one per (task,
 * sender), and the account prefixes {@link SENDER_ALLOWED} reads. A copy from
 * the same account adds nothing, but a report from another account must not
 * hide the allowed one behind it.
 */
function reportParams<T extends { id: string; sender: string }>(items: T[]): string[] {
  const seen = new Set<string>();
  const reports = items.filter((item) => {
    const key = `${item.id} ${item.sender}`;
    return !seen.has(key) && seen.add(key);
  });
  return [JSON.stringify(reports), uepBrokerUser(""), endpointBrokerUser("")];
}

/**
 * → `running` for tasks a UEP of their endpoint took, unless they moved on
 * already, and only when reported by an account allowed to (see
 * {@link ReportSender}; one statement). Returns how many changed, and the
 * reports refused for their sender (a known task of that endpoint, the wrong account).
 */
export async function markTasksRunning(
  sql: SqlExecutor,
  items: ReadonlyArray<{ taskId: string; endpointId: string } & ReportSender>,
): Promise<{ changed: number; refused: Array<{ taskId: string; sender: string }> }> {
  if (items.length === 0) return { changed: 0, refused: [] };
  const input = items.map((i) => ({
    id: i.taskId,
    endpoint_id: i.endpointId,
    sender: i.sender,
    shared: i.sharedAccount === true,
  }));
  const { rows } = await sql.query<{ id: string; sender: string; allowed: boolean; updated: boolean }>(
    `WITH input AS (
       SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, endpoint_id uuid, sender text, shared boolean)
     ),
     checked AS (
       SELECT i.id, i.sender, ${SENDER_ALLOWED} AS allowed
       FROM input i JOIN tasks t ON t.id = i.id AND t.endpoint_id = i.endpoint_id
     ),
     updated AS (
       UPDATE tasks t SET state = 'running', running_at = now()
       FROM checked c
       WHERE t.id = c.id AND c.allowed AND t.state IN ${NOT_STARTED_STATES}
       RETURNING t.id
     )
     SELECT c.id, c.sender, c.allowed, (u.id IS NOT NULL) AS updated
     FROM checked c LEFT JOIN (SELECT DISTINCT id FROM updated) u ON u.id = c.id`,
    reportParams(input),
  );
  return {
    changed: new Set(rows.filter((r) => r.updated).map((r) => r.id)).size,
    refused: rows.filter((r) => !r.allowed).map((r) => ({ taskId: r.id, sender: r.sender })),
  };
}

/**
 * Result data at least this long is bound as a parameter of its own rather
 * than inside the JSON of `$1`: JSON-encoding a multi-megabyte string, and
 * Postgres parsing it back out of jsonb, cost more than the store itself (in
 * PGlite, 2–5× the time of a plain text parameter for a 7 MB result).
 */
export const INLINE_RESULT_MAX = 64 * 1024;

/**
 * Stores results in one statement. A result for a task that is already
 * terminal changes nothing (re-runs and redeliveries happen); one for an
 * unknown task, or reported by another endpoint than the task's, is left out
 * of the answer; one from an account not allowed to report the task (see
 * {@link ReportSender}) changes nothing and is answered `refused`. Each
 * answer says whether the task's endpoint is High-Assurance. Result data over
 * {@link INLINE_RESULT_MAX} goes as `$4`, `$5`…, named by its row's `big`.
 */
export async function storeResults(sql: SqlExecutor, results: readonly TaskResultInput[]): Promise<StoredResult[]> {
  if (results.length === 0) return [];
  const big: string[] = [];
  const input = results.map((r) => {
    const data = r.result?.data ?? null;
    const separate = data !== null && data.length >= INLINE_RESULT_MAX;
    if (separate) big.push(data);
    return {
      id: r.taskId,
      endpoint_id: r.endpointId,
      sender: r.sender,
      shared: r.sharedAccount === true,
      state: r.state,
      result_strategy: r.result?.strategy ?? null,
      result_data: separate ? null : data,
      big: separate ? big.length + 3 : null,
      error: r.error ?? null,
      completed_at: r.completedAt,
    };
  });
  // The parameters are read only in the UPDATE's SET: the CTEs never copy the big values.
  const resultData =
    big.length === 0
      ? "c.result_data"
      : `CASE c.big ${big.map((_, i) => `WHEN ${i + 4} THEN $${i + 4}::text`).join(" ")} ELSE c.result_data END`;
  const { rows } = await sql.query<StoredResult>(
    `WITH input AS (
       SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, endpoint_id uuid, sender text, shared boolean,
         state text, result_strategy text, result_data text, big int, error jsonb, completed_at double precision)
     ),
     checked AS (
       SELECT i.*, t.task_group_id, t.state AS old_state, ${SENDER_ALLOWED} AS allowed,
         COALESCE(e.high_assurance, false) AS high_assurance
       FROM input i JOIN tasks t ON t.id = i.id AND t.endpoint_id = i.endpoint_id
         LEFT JOIN endpoints e ON e.id = t.endpoint_id
     ),
     updated AS (
       UPDATE tasks t SET state = c.state, result_strategy = c.result_strategy, result_data = ${resultData},
         error = c.error, completed_at = to_timestamp(c.completed_at / 1000.0)
       FROM checked c
       WHERE t.id = c.id AND c.allowed AND t.state NOT IN ${TERMINAL_STATES}
       RETURNING t.id, c.sender, c.state
     )
     SELECT c.id AS "taskId", c.task_group_id AS "taskGroupId", c.sender, NOT c.allowed AS refused,
       (u.id IS NOT NULL AND u.sender = c.sender) AS updated, COALESCE(u.state, c.old_state) AS state,
       c.high_assurance AS "highAssurance"
     FROM checked c LEFT JOIN updated u ON u.id = c.id`,
    [...reportParams(input), ...big],
  );
  return rows;
}
