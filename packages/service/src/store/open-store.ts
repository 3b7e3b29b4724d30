/**
 * Opens the store the options ask for, migrated and ready: Postgres when a
 * database URL is given, else PGlite in the data directory.
 */
import { AuthStore } from "./auth-store.js";
import { migrate } from "./migrate.js";
import { openPGlite } from "./pglite-client.js";
import { openPostgres } from "./postgres-client.js";
import type { SqlClient } from "./sql-client.js";
import { Store } from "./store.js";

export type StoreLocation = { kind: "pglite"; dataDir: string } | { kind: "postgres"; url: string };

export async function openStore(location: StoreLocation): Promise<Store> {
  return (await openStores(location)).store;
}

/** The domain store and the login store over one client (closed by `store.close()`); `clock` dates the logins. */
export async function openStores(
  location: StoreLocation,
  clock: () => number = Date.now,
): Promise<{ store: Store; authStore: AuthStore }> {
  const client: SqlClient =
    location.kind === "postgres" ? await openPostgres(location.url) : await openPGlite(location.dataDir);
  try {
    await migrate(client);
  } catch (err) {
    await client.close().catch(() => undefined);
    throw err;
  }
  return { store: new Store(client), authStore: new AuthStore(client, clock) };
}
