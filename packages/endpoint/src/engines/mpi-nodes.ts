/**
 * The MPI engine's nodes and who holds them: the nodes come from
 * `CONDUIT_MPI_NODES` (comma-separated), else, inside a Slurm job, from
 * `SLURM_JOB_NODELIST` expanded by `scontrol show hostnames`, else this host.
 * A `MpiNodePool` hands each MPI task the distinct free nodes it asks for and
 * queues it (first come, first served) until that many are free, so
 * concurrent MPI tasks never share a node.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { ConduitError } from "@conduit/protocol/wire";
import { MPI_NODES_ENV } from "../worker/mpi-prefix.js";

const run = promisify(execFile);

/** How long `scontrol show hostnames` may take. */
const SCONTROL_TIMEOUT_MS = 30_000;

/** The engine's nodes, from its environment; throws naming the list that is wrong and the fix. */
export async function engineMpiNodes(env: NodeJS.ProcessEnv): Promise<string[]> {
  const listed = splitNodes(env[MPI_NODES_ENV] ?? "");
  if (listed.length > 0) return distinct(listed, MPI_NODES_ENV);
  const slurmList = env.SLURM_JOB_NODELIST?.trim();
  if (!slurmList) return ["localhost"];
  let stdout: string;
  try {
    ({ stdout } = await run("scontrol", ["show", "hostnames", slurmList], { env, timeout: SCONTROL_TIMEOUT_MS }));
  } catch (err) {
    const reason = String((err as { stderr?: unknown }).stderr ?? "").trim() || (err as Error).message;
    throw new ConduitError(
      "MPI_NODES_UNKNOWN",
      `\`scontrol show hostnames ${slurmList}\` failed (${reason}); run the endpoint where Slurm's clients work, or set ${MPI_NODES_ENV} to the job's nodes.`,
    );
  }
  return distinct(splitNodes(stdout.replace(/\n/g, ",")), "SLURM_JOB_NODELIST");
}

function splitNodes(list: string): string[] {
  return list
    .split(",")
    .map((n) => n.trim())
    .filter(Boolean);
}

function distinct(nodes: string[], source: string): string[] {
  const twice = nodes.find((n, i) => nodes.indexOf(n) !== i);
  if (twice !== undefined) {
    throw new ConduitError("MPI_NODES_INVALID", `${source} names ${twice} twice; list each node once.`);
  }
  return nodes;
}

interface Waiting {
  taskId: string;
  count: number;
  grant(nodes: string[]): void;
}

export class MpiNodePool {
  private readonly free: Set<string>;
  private readonly held = new Map<string, string[]>();
  private readonly waiting: Waiting[] = [];

  constructor(readonly nodes: readonly string[]) {
    this.free = new Set(nodes);
  }

  /** Tasks queued for nodes. */
  get waitingTasks(): number {
    return this.waiting.length;
  }

  /** True while the task waits for nodes or holds them. */
  has(taskId: string): boolean {
    return this.held.has(taskId) || this.waiting.some((w) => w.taskId === taskId);
  }

  /**
   * Calls `grant` with `count` distinct free nodes, now or once enough are
   * free; tasks are served in the order they asked. A count above the pool's
   * size is refused (it would wait forever).
   */
  acquire(taskId: string, count: number, grant: (nodes: string[]) => void): void {
    if (count > this.nodes.length) {
      throw new RangeError(`Task ${taskId} asks for ${count} nodes; this engine has ${this.nodes.length}.`);
    }
    this.waiting.push({ taskId, count, grant });
    this.serve();
  }

  /** Gives the task's nodes back (or drops it from the queue) and serves the tasks waiting. */
  release(taskId: string): void {
    const nodes = this.held.get(taskId);
    if (nodes) {
      this.held.delete(taskId);
      for (const n of nodes) this.free.add(n);
    } else {
      const i = this.waiting.findIndex((w) => w.taskId === taskId);
      if (i >= 0) this.waiting.splice(i, 1);
    }
    this.serve();
  }

  /** Empties the queue, returning the ids of the tasks that were waiting. */
  drain(): string[] {
    return this.waiting.splice(0).map((w) => w.taskId);
  }

  private serve(): void {
    while (this.waiting.length > 0 && this.waiting[0].count <= this.free.size) {
      const next = this.waiting.shift() as Waiting;
      // In the engine's order, so a task's first node is the first free one listed.
      const nodes = this.nodes.filter((n) => this.free.has(n)).slice(0, next.count);
      for (const n of nodes) this.free.delete(n);
      this.held.set(next.taskId, nodes);
      next.grant(nodes);
    }
  }
}
