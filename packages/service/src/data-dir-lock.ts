/**
 * PGlite admits one process per data directory (a second one corrupts it), so
 * the service holds `<dataDir>/service.lock` with its pid while it runs. A lock
 * whose process is gone (a crash, kill -9) is taken over.
 */
import { mkdir, readFile, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ConduitError } from "@conduit/protocol";

export interface DataDirLock {
  release(): Promise<void>;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const file = join(dataDir, "service.lock");
  const mine = `${process.pid}\n`;
  for (let attempt = 0; ; attempt++) {
    try {
      await writeFile(file, mine, { flag: "wx", mode: 0o600 });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 0) throw err;
    }
    const holder = Number.parseInt(await readFile(file, "utf8").catch(() => ""), 10);
    if (Number.isInteger(holder) && holder > 0 && isAlive(holder)) {
      throw new ConduitError(
        "DATA_DIR_LOCKED",
        `Another Conduit service (pid ${holder}) is using the data directory ${dataDir}; stop it first, or pass another --data-dir (PGlite admits one process; use --database-url with Postgres to run several).`,
      );
    }
    await unlink(file).catch(() => undefined);
  }
  return {
    async release() {
      const content = await readFile(file, "utf8").catch(() => "");
      if (content === mine) await unlink(file).catch(() => undefined);
    },
  };
}
