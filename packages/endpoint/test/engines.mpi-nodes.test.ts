/**
 * The MPI engine's node allocator: each task gets distinct free nodes, waits
 * (first come, first served) until enough are free, and gives them back; and
 * where the engine's node list comes from.
 */
import { describe, expect, it } from "vitest";
import { engineMpiNodes, MpiNodePool } from "../src/engines/mpi-nodes.js";

/** Grants in the order they happened, as [taskId, nodes]. */
function recorder() {
  const grants: [string, string[]][] = [];
  return { grants, grant: (taskId: string) => (nodes: string[]) => grants.push([taskId, nodes]) };
}

describe("MpiNodePool", () => {
  it("hands concurrent tasks disjoint nodes and queues a task until enough are free", () => {
    const pool = new MpiNodePool(["n1", "n2", "n3"]);
    const { grants, grant } = recorder();
    pool.acquire("a", 2, grant("a"));
    pool.acquire("b", 2, grant("b"));
    pool.acquire("c", 1, grant("c"));
    // b waits for two nodes; c, behind it, waits too, though one is free (no overtaking).
    expect(grants).toEqual([["a", ["n1", "n2"]]]);
    expect(pool.waitingTasks).toBe(2);
    expect(pool.has("b")).toBe(true);

    pool.release("a");
    expect(grants).toEqual([
      ["a", ["n1", "n2"]],
      ["b", ["n1", "n2"]],
      ["c", ["n3"]],
    ]);
    expect(pool.waitingTasks).toBe(0);

    pool.release("c");
    pool.acquire("d", 3, grant("d"));
    expect(grants).toHaveLength(3);
    pool.release("b");
    expect(grants[3]).toEqual(["d", ["n1", "n2", "n3"]]);
    pool.release("d");
    expect(pool.has("d")).toBe(false);
  });

  it("drops a waiting task on release, empties its queue on drain, and refuses more nodes than it has", () => {
    const pool = new MpiNodePool(["n1", "n2"]);
    const { grants, grant } = recorder();
    pool.acquire("a", 2, grant("a"));
    pool.acquire("b", 1, grant("b"));
    pool.acquire("c", 1, grant("c"));
    pool.release("b");
    expect(pool.has("b")).toBe(false);
    expect(pool.drain()).toEqual(["c"]);
    pool.release("a");
    expect(grants).toEqual([["a", ["n1", "n2"]]]);
    expect(() => pool.acquire("d", 3, grant("d"))).toThrow("Task d asks for 3 nodes; this engine has 2.");
    expect(pool.has("d")).toBe(false);
  });
});

describe("engineMpiNodes", () => {
  it("reads CONDUIT_MPI_NODES, else this host, and refuses a node listed twice", async () => {
    expect(await engineMpiNodes({ CONDUIT_MPI_NODES: " n1, n2 ,," })).toEqual(["n1", "n2"]);
    expect(await engineMpiNodes({})).toEqual(["localhost"]);
    await expect(engineMpiNodes({ CONDUIT_MPI_NODES: "n1,n2,n1" })).rejects.toThrow(
      "CONDUIT_MPI_NODES names n1 twice; list each node once.",
    );
  });
});
