/**
 * The counts `/metrics` reads when it is scraped (at most every few seconds,
 * never on the hot path): unfinished tasks by endpoint and state, and UEPs.
 */
import type { SqlExecutor } from "./sql-client.js";
import { TERMINAL_STATES } from "./task-state-sql.js";

export interface OpenTaskCount {
  endpointId: string;
  state: string;
  count: number;
}

export interface UepCount {
  endpointId: string;
  total: number;
  /** Heard from within the window asked for. */
  recent: number;
}

export async function countOpenTasks(sql: SqlExecutor): Promise<OpenTaskCount[]> {
  const { rows } = await sql.query<{ endpoint_id: string; state: string; n: string | number }>(
    `SELECT endpoint_id, state, count(*) AS n FROM tasks WHERE state NOT IN ${TERMINAL_STATES} GROUP BY endpoint_id, state`,
  );
  return rows.map((r) => ({ endpointId: r.endpoint_id, state: r.state, count: Number(r.n) }));
}

export async function countUeps(sql: SqlExecutor, recentSeconds: number): Promise<UepCount[]> {
  const { rows } = await sql.query<{ endpoint_id: string; total: string | number; recent: string | number }>(
    `SELECT endpoint_id, count(*) AS total,
       count(*) FILTER (WHERE last_seen > now() - make_interval(secs => $1)) AS recent
     FROM ueps GROUP BY endpoint_id`,
    [recentSeconds],
  );
  return rows.map((r) => ({ endpointId: r.endpoint_id, total: Number(r.total), recent: Number(r.recent) }));
}
