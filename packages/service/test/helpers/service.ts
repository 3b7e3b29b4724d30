/**
 * A real service started in-process for a test suite: on a free port, with no
 * log output and no credentials file, on a RabbitMQ vhost of its own and a
 * throwaway store (PGlite in a temp folder, or a fresh Postgres database).
 * Each suite adds the options it tests (`amqpManagementUrl`, limits, …).
 */
import { join } from "node:path";
import { type RunningService, type ServiceOptions, startService } from "../../src/index.js";
import { openPGlite } from "../../src/store/pglite-client.js";
import { createVhost } from "./broker.js";
import { createPostgresDatabase, createTempDir, type Throwaway } from "./databases.js";

/** What every test service shares; suites that start several services on one store spread it. */
export const TEST_SERVICE_DEFAULTS = {
  port: 0,
  writeCredentials: false,
  logLevel: "silent",
} as const satisfies ServiceOptions;

export type TestStore = "pglite" | "postgres";

/** Both stores, for `describe.each(TEST_STORES)("… on $name", ({ store }) => …)`. */
export const TEST_STORES: ReadonlyArray<{ name: string; store: TestStore }> = [
  { name: "PGlite", store: "pglite" },
  { name: "Postgres", store: "postgres" },
];

export interface TestService extends Throwaway<RunningService> {
  /** The suite's vhost, which the service connects to. */
  amqpUrl: string;
}

/**
 * Starts the service; `dispose` closes it, then drops its store and vhost.
 * @param options on top of {@link TEST_SERVICE_DEFAULTS}; a function is given
 * the vhost's URL. A `dataDir` given here is used instead of a new store.
 * @param store @default "pglite"
 */
export async function startTestService(
  options: ServiceOptions | ((amqpUrl: string) => ServiceOptions) = {},
  store: TestStore = "pglite",
): Promise<TestService> {
  const disposers: Array<() => Promise<void>> = [];
  const dispose = async () => {
    for (const step of disposers.splice(0).reverse()) await step();
  };
  try {
    const vhost = await createVhost();
    disposers.push(() => vhost.dispose());
    const extra = typeof options === "function" ? options(vhost.value) : options;
    const storeOptions = extra.dataDir === undefined ? await throwawayStore(store, disposers) : {};
    const service = await startService({ ...TEST_SERVICE_DEFAULTS, ...storeOptions, amqpUrl: vhost.value, ...extra });
    disposers.push(() => service.close());
    return { value: service, amqpUrl: vhost.value, dispose };
  } catch (err) {
    await dispose().catch(() => undefined);
    throw err;
  }
}

async function throwawayStore(
  store: TestStore,
  disposers: Array<() => Promise<void>>,
): Promise<Pick<ServiceOptions, "dataDir" | "databaseUrl">> {
  if (store === "postgres") {
    const database = await createPostgresDatabase();
    disposers.push(() => database.dispose());
    return { databaseUrl: database.value };
  }
  const dir = await createTempDir();
  disposers.push(() => dir.dispose());
  return { dataDir: dir.value };
}

/**
 * For suites that start the service themselves (as a child process, or with
 * its default paths): a vhost and a fresh user dir (`CONDUIT_USER_DIR`) whose
 * PGlite store in `service/` is already made. PGlite's first start (initdb)
 * takes seconds; they are spent here rather than in a test.
 */
export async function prepareServiceHome(): Promise<Throwaway<{ amqpUrl: string; userDir: string }>> {
  const vhost = await createVhost();
  const dir = await createTempDir().catch(async (err: unknown) => {
    await vhost.dispose();
    throw err;
  });
  const dispose = async () => {
    await dir.dispose();
    await vhost.dispose();
  };
  try {
    const pglite = await openPGlite(join(dir.value, "service"));
    await pglite.close();
  } catch (err) {
    await dispose().catch(() => undefined);
    throw err;
  }
  return { value: { amqpUrl: vhost.value, userDir: dir.value }, dispose };
}
