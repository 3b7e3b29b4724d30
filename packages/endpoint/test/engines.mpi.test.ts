/**
 * MPIEngine and MPIFunction through a real user endpoint process (RabbitMQ,
 * worker processes) and Debian's Open MPI `mpiexec`: the launcher prefix is
 * built from each task's resource_specification, and bad ones are refused.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deserializeData, type TaskMessage } from "@conduit/protocol";
import { MPIFunction } from "@conduit/sdk";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createEngine } from "../src/engines/registry.js";
import { mpiPrefix, mpiResources } from "../src/worker/mpi-prefix.js";
import { UepHarness } from "./user-endpoint.harness.js";

const ROOT_OK = { OMPI_ALLOW_RUN_AS_ROOT: "1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: "1" };

const template = (engine: string) => `engine:
${engine}
heartbeat_period: 1
`;

describe("MPIEngine options", () => {
  it("takes mpi_launcher, which the HighThroughputEngine refuses, and only known launchers", () => {
    expect(createEngine({ type: "GlobusMPIEngine", mpi_launcher: "srun" }).type).toBe("MPIEngine");
    expect(() => createEngine({ type: "MPIEngine", mpi_launcher: "mpirun" })).toThrow(/mpi_launcher/);
    expect(() => createEngine({ type: "HighThroughputEngine", mpi_launcher: "mpiexec" })).toThrow(
      "`engine.mpi_launcher` is not a HighThroughputEngine option; use `type: MPIEngine` (or GlobusMPIEngine) for MPI tasks, or remove it.",
    );
  });

  it("builds each launcher's prefix, Open MPI's flags apart from MPICH/Hydra's", () => {
    const r = mpiResources({ num_nodes: 2, ranks_per_node: 3, launcher_options: "--bind-to core" }, "t", 2);
    expect(r).toEqual({ numNodes: 2, ranksPerNode: 3, numRanks: 6, launcherOptions: "--bind-to core" });
    const nodes = ["n1", "n2", "n3"];
    expect(mpiPrefix("mpiexec", r, nodes, "openmpi")).toBe("mpiexec -n 6 --npernode 3 --host n1:3,n2:3 --bind-to core");
    expect(mpiPrefix("mpiexec", r, nodes, "hydra")).toBe("mpiexec -n 6 -ppn 3 -hosts n1,n2 --bind-to core");
    expect(mpiPrefix("srun", r, nodes)).toBe(
      "srun --ntasks 6 --ntasks-per-node 3 --nodelist n1,n2 --nodes 2 --bind-to core",
    );
    expect(mpiPrefix("aprun", r, nodes)).toBe("aprun -n 6 -N 3 -node-list n1,n2 --bind-to core");
  });
});

describe("user endpoint process: MPIFunction on an MPIEngine with mpiexec", () => {
  let h: UepHarness;
  beforeEach(async () => {
    h = await new UepHarness().open();
  });
  afterEach(async () => {
    await h.close();
  });

  const outcome = (task: TaskMessage) => h.outcome(task, 30_000);

  const mpiTask = (
    cmd: string,
    resourceSpecification?: Record<string, unknown>,
    values?: Record<string, string>,
  ): TaskMessage => ({
    ...h.task({ args: values ? [values] : [] }),
    function: new MPIFunction(cmd).payload,
    ...(resourceSpecification ? { resourceSpecification } : {}),
  });

  it("runs 2 ranks that each print their rank, exports the prefix, and refuses bad resource specifications", async () => {
    const ranks = mpiTask("sh -c 'echo rank $OMPI_COMM_WORLD_RANK of $OMPI_COMM_WORLD_SIZE'", { num_ranks: 2 });
    const env = mpiTask("sh -c 'echo $PARSL_MPI_PREFIX/$CONDUIT_NUM_RANKS/$PARSL_RANKS_PER_NODE'", {
      num_nodes: 1,
      ranks_per_node: 1,
    });
    const missing = mpiTask("hostname");
    const contradictory = mpiTask("hostname", { num_nodes: 1, ranks_per_node: 2, num_ranks: 3 });
    const tooMany = mpiTask("hostname", { num_nodes: 2, ranks_per_node: 1 });
    const notANumber = mpiTask("hostname", { num_ranks: "2" });
    await h.publish(ranks, env, missing, contradictory, tooMany, notANumber);
    const uep = h.start({
      template: template("  type: MPIEngine\n  mpi_launcher: mpiexec\n  max_workers: 1"),
      env: ROOT_OK,
    });

    const r = await outcome(ranks);
    expect(r.error).toBeUndefined();
    const result = deserializeData(r.result!) as { cmd: string; stdout: string; returncode: number };
    expect(result.cmd).toBe("$CONDUIT_MPI_PREFIX sh -c 'echo rank $OMPI_COMM_WORLD_RANK of $OMPI_COMM_WORLD_SIZE'");
    expect(result.returncode).toBe(0);
    expect(result.stdout.split("\n").sort()).toEqual(["rank 0 of 2", "rank 1 of 2"]);
    expect(deserializeData((await outcome(env)).result!)).toMatchObject({
      stdout: "mpiexec -n 1 --npernode 1 --host localhost:1/1/1",
      returncode: 0,
    });

    const refusal = async (task: TaskMessage) => {
      const error = (await outcome(task)).error;
      expect(error).toMatchObject({ code: "INVALID_RESOURCE_SPECIFICATION", name: "InvalidResourceSpecification" });
      return error!.message;
    };
    expect(await refusal(missing)).toBe(
      `Task ${missing.taskId}'s resource_specification is missing, and an MPI task needs one; submit with resourceSpecification: { num_nodes: 1, num_ranks: 2 } (keys: num_nodes, ranks_per_node, num_ranks, launcher_options).`,
    );
    expect(await refusal(contradictory)).toBe(
      `Task ${contradictory.taskId}'s resource_specification contradicts itself: num_ranks 3 is not num_nodes 1 × ranks_per_node 2; give two of the three, or consistent values.`,
    );
    expect(await refusal(tooMany)).toBe(
      `Task ${tooMany.taskId}'s resource_specification asks for 2 nodes, but this engine has 1; ask for 1 or fewer.`,
    );
    expect(await refusal(notANumber)).toBe(
      `Task ${notANumber.taskId}'s resource_specification has num_ranks "2"; give a whole number, 1 or more.`,
    );

    uep.child.kill("SIGTERM");
    expect((await uep.exit).code).toBe(0);
  });

  it("hands two concurrent tasks disjoint nodes of a 2-node list", async () => {
    const dir = mkdtempSync(join(tmpdir(), "conduit-mpi-nodes-"));
    // Each task prints its nodes, then waits for the other: both finish only if they ran at the same time.
    const script = join(dir, "meet.sh");
    writeFileSync(
      script,
      `echo "$CONDUIT_MPI_NODELIST"; touch "${dir}/$1"
for i in $(seq 300); do [ -e "${dir}/$2" ] && exit 0; sleep 0.1; done; exit 1\n`,
    );
    const meet = (me: string, other: string) =>
      mpiTask("bash {script} {me} {other}", { num_nodes: 1, num_ranks: 1 }, { script, me, other });
    const a = meet("a", "b");
    const b = meet("b", "a");
    await h.publish(a, b);
    const uep = h.start({
      template: template("  type: MPIEngine\n  mpi_launcher: mpiexec\n  max_workers: 2"),
      env: { ...ROOT_OK, CONDUIT_MPI_NODES: "localhost,127.0.0.1" },
    });
    try {
      const printed = async (task: TaskMessage) => {
        const r = await outcome(task);
        expect(r.error).toBeUndefined();
        const result = deserializeData(r.result!) as { stdout: string; stderr: string; returncode: number };
        expect(result, result.stderr).toMatchObject({ returncode: 0 });
        return result.stdout;
      };
      const [nodesA, nodesB] = [await printed(a), await printed(b)];
      expect([nodesA, nodesB].sort()).toEqual(["127.0.0.1", "localhost"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    uep.child.kill("SIGTERM");
    expect((await uep.exit).code).toBe(0);
  });

  it("fails an MPIFunction on an engine without mpi_launcher, naming the MPIEngine", async () => {
    const task = mpiTask("hostname", { num_ranks: 1 });
    await h.publish(task);
    const uep = h.start({ template: template("  type: ThreadPoolEngine\n  max_workers: 1") });
    expect((await outcome(task)).error).toMatchObject({
      code: "FUNCTION_INVALID",
      message: `Task ${task.taskId} runs an MPIFunction, which needs an MPI engine; ask the endpoint's administrator for an engine of type MPIEngine with mpi_launcher set.`,
    });
    uep.child.kill("SIGTERM");
    expect((await uep.exit).code).toBe(0);
  });
});
