/**
 * A real single-node Slurm for a test file: `test/infra/slurm-up.sh` (copied
 * from the machine notes; it installs slurmctld, slurmd, slurm-client and
 * munge when missing) in a temp dir of this run, on two free ports of its
 * own so it never meets another cluster on this machine; `down()` runs
 * slurm-down.sh (cancels every job, stops the daemons) and removes the dir.
 */
import { execFile } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const INFRA = fileURLToPath(new URL("../../../test/infra/", import.meta.url));

export interface SlurmCluster {
  /** The environment Slurm's clients need (SLURM_CONF). */
  env: NodeJS.ProcessEnv;
  /** Runs a Slurm client (squeue, scancel, …) against this cluster. */
  client(argv: string[]): Promise<string>;
  down(): Promise<void>;
}

/** A port nobody listens on now (two calls give two ports: each is held until the other is found). */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve) => {
          const server = createServer();
          server.listen(0, "127.0.0.1", () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => (server.address() as { port: number }).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

/**
 * `pmix`: slurm-up.sh installs libpmix-dev (when missing) before slurmd
 * starts, so `srun --mpi=pmix` works; a slurmd started without it hangs there.
 */
export async function startSlurm(options: { pmix?: boolean } = {}): Promise<SlurmCluster> {
  const dir = mkdtempSync(join(tmpdir(), "conduit-slurm-"));
  // munged runs as the munge user and must reach its socket and key below this dir.
  chmodSync(dir, 0o755);
  const [ctld, slurmd] = await freePorts(2);
  const upEnv = {
    ...process.env,
    SLURM_CTLD_PORT: String(ctld),
    SLURMD_PORT: String(slurmd),
    SLURM_UP_FRESH: "1",
    ...(options.pmix ? { SLURM_WITH_PMIX: "1" } : {}),
  };
  const down = async () => {
    await run("bash", [join(INFRA, "slurm-down.sh"), dir], { env: upEnv }).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  let stdout: string;
  try {
    ({ stdout } = await run("bash", [join(INFRA, "slurm-up.sh"), dir], { env: upEnv }));
  } catch (err) {
    await down();
    throw new Error(`test/infra/slurm-up.sh failed: ${(err as { stderr?: string }).stderr ?? err}`);
  }
  const conf = /^export SLURM_CONF=(.+)$/m.exec(stdout)?.[1];
  if (!conf) throw new Error(`test/infra/slurm-up.sh printed no SLURM_CONF line: ${stdout}`);
  const env = { ...process.env, SLURM_CONF: conf };
  return {
    env,
    client: async (argv) => (await run(argv[0], argv.slice(1), { env })).stdout,
    down,
  };
}
