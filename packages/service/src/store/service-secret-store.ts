/**
 * Secrets the service derives things from, shared by every replica through the
 * store (e.g. the key of the derived broker account passwords).
 */
import type { SqlExecutor } from "./sql-client.js";

/**
 * The secret called `name`, made by `generate` the first time any replica
 * asks. Insert-if-absent, then read in a second statement (which sees a row a
 * concurrent replica committed meanwhile), so replicas starting together agree.
 */
export async function serviceSecret(sql: SqlExecutor, name: string, generate: () => string): Promise<string> {
  await sql.query("INSERT INTO service_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", [
    name,
    generate(),
  ]);
  const { rows } = await sql.query<{ value: string }>("SELECT value FROM service_secrets WHERE name = $1", [name]);
  if (!rows[0]) throw new Error(`Service secret ${name} vanished right after it was created.`);
  return rows[0].value;
}
