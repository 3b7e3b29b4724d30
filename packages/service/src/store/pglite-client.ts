/**
 * The embedded store: PGlite (Postgres compiled to WebAssembly), its files in
 * `<data dir>/pgdata`, run in a worker thread (pglite-worker.ts) so that its
 * statements never block the service's event loop. PGlite's own worker API
 * needs `navigator.locks`, which Node 20 lacks; this one is a message per
 * statement. PGlite admits one process per data directory; the service takes
 * a lock file (data-dir-lock.ts) before it opens one, and the thread is in
 * the same process.
 */
import { existsSync } from "node:fs";
import { sep } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { ServiceError } from "../errors.js";
import { PGLITE_DEFAULT_SETTINGS, type PGliteSettings } from "./pglite-direct.js";
import {
  BYTES_PARAM_MIN,
  type FromPGliteWorker,
  PGliteDatabaseError,
  type PGliteWorkerData,
  type SentError,
  type ThreadParam,
  type ToPGliteWorker,
} from "./pglite-protocol.js";
import type { SqlClient, SqlExecutor, SqlParam, SqlResult } from "./sql-client.js";

export { PGLITE_DEFAULT_SETTINGS, type PGliteSettings } from "./pglite-direct.js";
export { PGliteDatabaseError } from "./pglite-protocol.js";

/** The built worker entry: a thread cannot load TypeScript, so from the sources (vitest, tsx) it is dist's. */
function workerEntryPath(): string {
  const beside = fileURLToPath(new URL("./pglite-worker.js", import.meta.url));
  if (existsSync(beside)) return beside;
  const built = beside.replace(`${sep}src${sep}store${sep}`, `${sep}dist${sep}store${sep}`);
  if (built !== beside && existsSync(built)) return built;
  throw new ServiceError(
    "INTERNAL_ERROR",
    `The PGlite worker ${built} does not exist; build the service package first (npm run build).`,
  );
}

type Request = ToPGliteWorker extends infer R ? (R extends { id: number } ? Omit<R, "id"> : never) : never;

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  sql?: string;
}

class WorkerExecutor implements SqlExecutor {
  constructor(
    protected readonly channel: WorkerChannel,
    private readonly tx?: number,
  ) {}

  async query<T>(sql: string, params: readonly SqlParam[] = []): Promise<SqlResult<T>> {
    // A big text (a result's data) goes as UTF-8 bytes whose buffer is moved to the thread:
    // structured-cloning a 7 MB string copies it twice, and PGlite would measure it in a JS loop.
    // Only a `$n::text` placeholder's: bytes bound in binary format read as text for that type alone.
    const transfer: ArrayBuffer[] = [];
    const sent = params.map((p, i): ThreadParam => {
      if (typeof p !== "string" || p.length < BYTES_PARAM_MIN || !sql.includes(`$${i + 1}::text`)) return p;
      const bytes = new TextEncoder().encode(p);
      transfer.push(bytes.buffer as ArrayBuffer);
      return bytes;
    });
    const rows = (await this.channel.call({ op: "query", sql, params: sent, tx: this.tx }, sql, transfer)) as T[];
    return { rows };
  }

  async exec(sql: string): Promise<void> {
    await this.channel.call({ op: "exec", sql, tx: this.tx }, sql);
  }
}

/** The requests in flight to one worker, and what becomes of them if it stops. */
class WorkerChannel {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  /** Why no more requests are taken: closed, or the thread stopped. */
  private stopped?: Error;
  readonly exited: Promise<void>;

  constructor(
    private readonly worker: Worker,
    private readonly where: string,
  ) {
    this.exited = new Promise((resolve) => worker.once("exit", () => resolve()));
    worker.on("message", (message: FromPGliteWorker) => {
      if ("ready" in message) return;
      const pending = this.pending.get(message.id);
      if (!pending) return;
      this.pending.delete(message.id);
      if (message.ok) pending.resolve(message.value);
      else pending.reject(new PGliteDatabaseError(message.error, pending.sql));
    });
    let lastError: Error | undefined;
    worker.on("error", (err) => {
      lastError = err;
    });
    worker.on("exit", (code) => {
      const reason = lastError ? `${lastError.name}: ${lastError.message}` : `exit code ${code}`;
      this.stop(
        new ServiceError(
          "DATABASE_UNREACHABLE",
          `The PGlite worker thread for ${where} stopped (${reason}); restart the service, and if it stops again, report it with the service's log.`,
        ),
      );
    });
  }

  call(request: Request, sql?: string, transfer: ArrayBuffer[] = []): Promise<unknown> {
    if (this.stopped) return Promise.reject(this.stopped);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, sql });
      this.worker.postMessage({ ...request, id } as ToPGliteWorker, transfer);
    });
  }

  /** Refuses new requests with `reason` and fails those in flight with it. */
  stop(reason: Error): void {
    this.stopped ??= reason;
    for (const pending of this.pending.values()) pending.reject(this.stopped);
    this.pending.clear();
  }

  closedError(): Error {
    return new ServiceError(
      "DATABASE_UNREACHABLE",
      `The store (PGlite at ${this.where}) is closed; a statement ran after the service began to stop.`,
    );
  }
}

class PGliteWorkerClient extends WorkerExecutor implements SqlClient {
  private closing?: Promise<void>;

  constructor(
    channel: WorkerChannel,
    private readonly worker: Worker,
    readonly description: string,
  ) {
    super(channel);
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    const tx = (await this.channel.call({ op: "begin" })) as number;
    let value: T;
    try {
      value = await fn(new WorkerExecutor(this.channel, tx));
    } catch (err) {
      await this.channel.call({ op: "end", tx, commit: false }).catch(() => undefined);
      throw err;
    }
    await this.channel.call({ op: "end", tx, commit: true });
    return value;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.channel.call({ op: "close" });
      } finally {
        this.channel.stop(this.channel.closedError());
        // The worker leaves once its port closes; terminate() is for a worker that could not answer.
        const left = await Promise.race([
          this.channel.exited.then(() => true),
          new Promise<boolean>((resolve) => setTimeout(resolve, 5_000, false).unref()),
        ]);
        if (!left) await this.worker.terminate();
      }
    })();
    return this.closing;
  }
}

function toError(sent: SentError): Error {
  return new PGliteDatabaseError(sent, undefined);
}

/**
 * Opens (creating on first use) the PGlite database under `dataDir` in a
 * worker thread. The first start runs initdb: seconds, and the WebAssembly
 * heap's high-water mark until the next start.
 */
export async function openPGlite(
  dataDir: string,
  settings: PGliteSettings = PGLITE_DEFAULT_SETTINGS,
): Promise<SqlClient> {
  const data: PGliteWorkerData = { dataDir, settings };
  const worker = new Worker(workerEntryPath(), { workerData: data, execArgv: [] });
  const ready = await new Promise<{ description: string } | { error: Error }>((resolve) => {
    const onMessage = (message: FromPGliteWorker) => {
      if (message.id !== 0) return;
      worker.off("message", onMessage);
      resolve(
        "ready" in message && message.ready
          ? { description: message.description }
          : { error: toError((message as { error: SentError }).error) },
      );
    };
    worker.on("message", onMessage);
    worker.once("error", (err) => resolve({ error: err }));
    worker.once("exit", (code) =>
      resolve({ error: new Error(`the PGlite worker thread exited with code ${code} before it opened the database`) }),
    );
  });
  if ("error" in ready) {
    await worker.terminate();
    throw new ServiceError(
      "DATABASE_UNREACHABLE",
      `Cannot open the PGlite store in ${dataDir} (${ready.error.message}); check that the folder is writable and not damaged, or pass --database-url to use Postgres.`,
      { cause: ready.error },
    );
  }
  return new PGliteWorkerClient(new WorkerChannel(worker, dataDir), worker, ready.description);
}
