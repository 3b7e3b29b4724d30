/**
 * The MPI engine's launcher prefix for an MPIFunction: the task's
 * `resource_specification` checked (missing, contradictory or unsatisfiable
 * values refused in one sentence), then the prefix for the launcher
 * (`engine.mpi_launcher`) and, for mpiexec, the MPI flavour found on the
 * PATH (Open MPI's flags differ from MPICH/Hydra's). The prefix and each key
 * are exported to the command as CONDUIT_MPI_PREFIX, CONDUIT_NUM_RANKS, …
 * and under upstream's Parsl names (PARSL_MPI_PREFIX, PARSL_NUM_RANKS, …).
 */
import { execFileSync } from "node:child_process";
import { shellQuote } from "@conduit/protocol/task";
import { TaskError } from "../errors.js";

export const MPI_LAUNCHERS = ["mpiexec", "srun", "aprun"] as const;
export type MpiLauncher = (typeof MPI_LAUNCHERS)[number];

/** How the MPI engine tells its workers the launcher and the nodes they may use. */
export const MPI_LAUNCHER_ENV = "CONDUIT_MPI_LAUNCHER";
export const MPI_NODES_ENV = "CONDUIT_MPI_NODES";

export interface MpiResources {
  numNodes: number;
  ranksPerNode: number;
  numRanks: number;
  launcherOptions: string;
}

const KEYS = "num_nodes, ranks_per_node, num_ranks, launcher_options";

function refuse(taskId: string, what: string): TaskError {
  return new TaskError("INVALID_RESOURCE_SPECIFICATION", `Task ${taskId}'s resource_specification ${what}.`);
}

/**
 * The task's resources: `num_nodes` (default 1) and at least one of
 * `num_ranks`, `ranks_per_node`, the other derived; `nodesAvailable` bounds
 * `num_nodes`. Throws INVALID_RESOURCE_SPECIFICATION naming the problem.
 */
export function mpiResources(
  spec: Record<string, unknown> | undefined,
  taskId: string,
  nodesAvailable: number,
): MpiResources {
  if (spec === undefined || Object.keys(spec).length === 0) {
    throw refuse(
      taskId,
      `is missing, and an MPI task needs one; submit with resourceSpecification: { num_nodes: 1, num_ranks: 2 } (keys: ${KEYS})`,
    );
  }
  const count = (key: string): number | undefined => {
    const value = spec[key];
    if (value === undefined) return undefined;
    if (!(typeof value === "number" && Number.isInteger(value) && value >= 1)) {
      throw refuse(taskId, `has ${key} ${JSON.stringify(value)}; give a whole number, 1 or more`);
    }
    return value;
  };
  const numNodes = count("num_nodes") ?? 1;
  let numRanks = count("num_ranks");
  let ranksPerNode = count("ranks_per_node");
  const launcherOptions = spec.launcher_options ?? "";
  if (typeof launcherOptions !== "string") {
    throw refuse(taskId, `has launcher_options ${JSON.stringify(launcherOptions)}; give the options as one string`);
  }
  if (numRanks === undefined && ranksPerNode === undefined) {
    throw refuse(taskId, "gives neither num_ranks nor ranks_per_node; give one of them (the other is derived)");
  }
  numRanks ??= numNodes * (ranksPerNode as number);
  if (ranksPerNode === undefined) {
    if (numRanks % numNodes !== 0) {
      throw refuse(
        taskId,
        `asks for ${numRanks} ranks on ${numNodes} nodes, which do not divide evenly; give ranks_per_node as well, or a num_ranks that num_nodes divides`,
      );
    }
    ranksPerNode = numRanks / numNodes;
  }
  if (numRanks !== numNodes * ranksPerNode) {
    throw refuse(
      taskId,
      `contradicts itself: num_ranks ${numRanks} is not num_nodes ${numNodes} × ranks_per_node ${ranksPerNode}; give two of the three, or consistent values`,
    );
  }
  if (numNodes > nodesAvailable) {
    throw refuse(
      taskId,
      `asks for ${numNodes} nodes, but this engine has ${nodesAvailable}; ask for ${nodesAvailable} or fewer`,
    );
  }
  return { numNodes, ranksPerNode, numRanks, launcherOptions };
}

/** The nodes a worker may hand to its MPI tasks: `CONDUIT_MPI_NODES` (comma-separated), else this host. */
export function mpiNodes(env: NodeJS.ProcessEnv = process.env): string[] {
  const listed = (env[MPI_NODES_ENV] ?? "")
    .split(",")
    .map((n) => n.trim())
    .filter(Boolean);
  return listed.length > 0 ? listed : ["localhost"];
}

export type MpiFlavour = "openmpi" | "hydra";

let flavourFound: MpiFlavour | undefined;

/** Which mpiexec the PATH holds: Open MPI, else MPICH/Hydra (and its kin). */
export function mpiexecFlavour(): MpiFlavour {
  if (flavourFound) return flavourFound;
  let version = "";
  try {
    version = execFileSync("mpiexec", ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    version = String((err as { stdout?: unknown }).stdout ?? "");
  }
  flavourFound = /Open MPI|OpenRTE/i.test(version) ? "openmpi" : "hydra";
  return flavourFound;
}

/** The launcher prefix for the resources, on the first `numNodes` of `nodes`. */
export function mpiPrefix(
  launcher: MpiLauncher,
  r: MpiResources,
  nodes: readonly string[],
  flavour?: MpiFlavour,
): string {
  const used = nodes.slice(0, r.numNodes);
  const opts = r.launcherOptions ? ` ${r.launcherOptions}` : "";
  switch (launcher) {
    case "srun":
      return `srun --ntasks ${r.numRanks} --ntasks-per-node ${r.ranksPerNode} --nodelist ${shellQuote(used.join(","))} --nodes ${r.numNodes}${opts}`;
    case "aprun":
      return `aprun -n ${r.numRanks} -N ${r.ranksPerNode} -node-list ${shellQuote(used.join(","))}${opts}`;
    case "mpiexec":
      if ((flavour ?? mpiexecFlavour()) === "openmpi") {
        const hosts = used.map((n) => `${n}:${r.ranksPerNode}`).join(",");
        return `mpiexec -n ${r.numRanks} --npernode ${r.ranksPerNode} --host ${shellQuote(hosts)}${opts}`;
      }
      return `mpiexec -n ${r.numRanks} -ppn ${r.ranksPerNode} -hosts ${shellQuote(used.join(","))}${opts}`;
  }
}

/**
 * The environment an MPIFunction's command gets: the prefix, each key and
 * the nodes it runs on (MPI_NODELIST, comma-separated), under Conduit's and
 * Parsl's names.
 */
export function mpiEnvironment(
  launcher: MpiLauncher,
  prefix: string,
  r: MpiResources,
  nodes: readonly string[],
): Record<string, string> {
  const values: Record<string, string> = {
    MPI_PREFIX: prefix,
    [`${launcher.toUpperCase()}_PREFIX`]: prefix,
    NUM_NODES: String(r.numNodes),
    RANKS_PER_NODE: String(r.ranksPerNode),
    NUM_RANKS: String(r.numRanks),
    LAUNCHER_OPTIONS: r.launcherOptions,
    MPI_NODELIST: nodes.join(","),
  };
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(values)) {
    env[`CONDUIT_${key}`] = value;
    env[`PARSL_${key}`] = value;
  }
  return env;
}
