/**
 * The PGlite worker thread: owns the PGlite instance, so its WebAssembly runs
 * here and never blocks the service's event loop. It answers the requests of
 * pglite-client.ts one message each; a transaction stays open (PGlite's own
 * transaction, which holds every other statement back) until the client ends it.
 */
import { parentPort, workerData } from "node:worker_threads";
import { openPGliteInThread } from "./pglite-direct.js";
import { type FromPGliteWorker, type PGliteWorkerData, sendError, type ToPGliteWorker } from "./pglite-protocol.js";
import type { SqlClient, SqlExecutor, SqlParam } from "./sql-client.js";

const port = parentPort;
if (!port) throw new Error("pglite-worker.js runs as a worker thread; open the store with openPGlite().");

const { dataDir, settings } = workerData as PGliteWorkerData;

/** Thrown inside PGlite's transaction callback to roll it back when the client asks. */
const ROLLBACK = Symbol("rollback");

interface OpenTransaction {
  tx: SqlExecutor;
  end: (commit: boolean) => void;
  settled: Promise<void>;
}

const transactions = new Map<number, OpenTransaction>();
let nextTx = 1;

function reply(message: FromPGliteWorker): void {
  port?.postMessage(message);
}

function begin(client: SqlClient, id: number): void {
  const tx = nextTx++;
  let answered = false;
  const settled = client.transaction(async (executor) => {
    const decision = new Promise<boolean>((resolve) => {
      transactions.set(tx, { tx: executor, end: resolve, settled });
    });
    answered = true;
    reply({ id, ok: true, value: tx });
    if (!(await decision)) throw ROLLBACK;
  });
  settled.catch((err: unknown) => {
    // Failing before the callback ran (the database is closing): the begin itself fails.
    if (!answered) reply({ id, ok: false, error: sendError(err) });
  });
}

async function end(tx: number, commit: boolean): Promise<null> {
  const open = transactions.get(tx);
  if (!open) throw new Error(`Transaction ${tx} is not open in the PGlite worker; it has already ended.`);
  transactions.delete(tx);
  open.end(commit);
  try {
    await open.settled;
  } catch (err) {
    if (err !== ROLLBACK) throw err;
  }
  return null;
}

function executor(client: SqlClient, tx: number | undefined): SqlExecutor {
  if (tx === undefined) return client;
  const open = transactions.get(tx);
  if (!open) throw new Error(`Transaction ${tx} is not open in the PGlite worker; run its statements before it ends.`);
  return open.tx;
}

async function handle(client: SqlClient, message: ToPGliteWorker): Promise<unknown> {
  switch (message.op) {
    case "query":
      // The executors are pglite-direct.ts's, which bind a UTF-8 bytes parameter as text.
      return (await executor(client, message.tx).query(message.sql, message.params as readonly SqlParam[])).rows;
    case "exec":
      await executor(client, message.tx).exec(message.sql);
      return null;
    case "end":
      return end(message.tx, message.commit);
    case "close":
      for (const open of transactions.values()) open.end(false);
      await client.close();
      return null;
    case "begin":
      throw new Error("begin is answered by begin()");
  }
}

async function main(): Promise<void> {
  let client: SqlClient;
  try {
    client = await openPGliteInThread(dataDir, settings);
  } catch (err) {
    reply({ id: 0, ready: false, error: sendError(err) });
    return;
  }
  port?.on("message", (message: ToPGliteWorker) => {
    if (message.op === "begin") {
      begin(client, message.id);
      return;
    }
    handle(client, message).then(
      (value) => {
        reply({ id: message.id, ok: true, value });
        if (message.op === "close") port.close();
      },
      (err: unknown) => reply({ id: message.id, ok: false, error: sendError(err) }),
    );
  });
  reply({ id: 0, ready: true, description: client.description });
}

void main();
