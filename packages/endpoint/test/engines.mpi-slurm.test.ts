/**
 * The MPIEngine's srun path on a real single-node Slurm started with PMIx
 * (libpmix-dev installed before slurmd starts): the user endpoint runs inside
 * a job allocation (`salloc --no-shell`, its SLURM_JOB_ID and
 * SLURM_JOB_NODELIST in the UEP's environment), takes its nodes from the job
 * (`scontrol show hostnames`), and an MPIFunction's 2 ranks run as a job step
 * through `srun --mpi=pmix`, each printing the rank PMIx gave it.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { deserializeData } from "@conduit/protocol";
import { MPIFunction } from "@conduit/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineMpiNodes } from "../src/engines/mpi-nodes.js";
import { type SlurmCluster, startSlurm } from "./slurm.helpers.js";
import { UepHarness } from "./user-endpoint.harness.js";

const run = promisify(execFile);

let slurm: SlurmCluster | undefined;
/** Why the file's tests are skipped: PMIx could not be installed. */
let skipped: string | undefined;

beforeAll(async () => {
  try {
    slurm = await startSlurm({ pmix: true });
  } catch (err) {
    const message = (err as Error).message;
    if (!/apt-get install .*libpmix-dev.* failed/.test(message)) throw err;
    skipped = `libpmix-dev could not be installed, so srun --mpi=pmix cannot work: ${message}`;
    console.warn(`engines.mpi-slurm.test.ts skipped: ${skipped}`);
  }
}, 180_000);

afterAll(async () => {
  await slurm?.down();
});

describe("MPIEngine with mpi_launcher: srun on a real Slurm", () => {
  it("expands the job's node list with scontrol show hostnames", async (ctx) => {
    if (!slurm) return ctx.skip(skipped);
    expect(await engineMpiNodes({ ...slurm.env, SLURM_JOB_NODELIST: "n[1-3],x" })).toEqual(["n1", "n2", "n3", "x"]);
  });

  it("runs an MPIFunction's 2 ranks through srun --mpi=pmix inside the endpoint's job allocation", async (ctx) => {
    if (!slurm) return ctx.skip(skipped);
    const cluster = slurm;
    const { stderr } = await run("salloc", ["--no-shell", "--nodes=1", "--ntasks=2", "--job-name=conduit-mpi"], {
      env: cluster.env,
      timeout: 60_000,
    });
    const jobId = /Granted job allocation (\d+)/.exec(stderr)?.[1];
    expect(jobId, stderr).toBeDefined();
    const h = await new UepHarness().open();
    try {
      const nodeList = (await cluster.client(["squeue", "--noheader", "--format=%N", `--jobs=${jobId}`])).trim();
      expect(nodeList).toBe("localhost");
      const task = {
        ...h.task({ args: [] }),
        function: new MPIFunction("sh -c 'echo rank $PMIX_RANK in job $SLURM_JOB_ID'").payload,
        resourceSpecification: { num_ranks: 2, launcher_options: "--mpi=pmix" },
      };
      await h.publish(task);
      const uep = h.start({
        template: "engine:\n  type: MPIEngine\n  mpi_launcher: srun\n  max_workers: 1\nheartbeat_period: 1\n",
        env: { SLURM_CONF: cluster.env.SLURM_CONF as string, SLURM_JOB_ID: jobId!, SLURM_JOB_NODELIST: nodeList },
      });
      const r = await h.outcome(task, 60_000);
      expect(r.error).toBeUndefined();
      const result = deserializeData(r.result!) as { stdout: string; stderr: string; returncode: number };
      expect(result, result.stderr).toMatchObject({ returncode: 0 });
      // PMIx gave each rank its number, and both ran as a step of the endpoint's job.
      expect(result.stdout.split("\n").sort()).toEqual([`rank 0 in job ${jobId}`, `rank 1 in job ${jobId}`]);
      uep.child.kill("SIGTERM");
      expect((await uep.exit).code).toBe(0);
    } finally {
      await h.close();
      await cluster.client(["scancel", jobId!]).catch(() => undefined);
    }
  }, 120_000);
});
