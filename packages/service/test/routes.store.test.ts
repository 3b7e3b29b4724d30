/**
 * The Store methods behind the delete, cancel and task group routes, on both
 * backends (PGlite in a temp folder, a fresh Postgres database): cancel in one
 * statement and only from a state before running, counts per state, pending
 * tasks, and deletes that keep task history.
 */
import { randomUUID } from "node:crypto";
import { endpointBrokerUser, type WireError } from "@conduit/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore } from "../src/store/open-store.js";
import type { Store } from "../src/store/store.js";
import { createPostgresDatabase, createTempDir } from "./helpers/databases.js";

const backends = [
  {
    name: "PGlite",
    open: async () => {
      const dir = await createTempDir();
      return { location: { kind: "pglite" as const, dataDir: dir.value }, dispose: dir.dispose };
    },
  },
  {
    name: "Postgres",
    open: async () => {
      const db = await createPostgresDatabase();
      return { location: { kind: "postgres" as const, url: db.value }, dispose: db.dispose };
    },
  },
];

const CANCELLED: WireError = { code: "TASK_CANCELLED", name: "CancelledError", message: "cancelled" };
const DELETED: WireError = { code: "ENDPOINT_DELETED", name: "EndpointDeleted", message: "deleted" };

describe.each(backends)("Store routes methods on $name", (backend) => {
  let store: Store;
  let dispose: () => Promise<void>;
  let owner: string;
  let other: string;

  beforeAll(async () => {
    const opened = await backend.open();
    store = await openStore(opened.location);
    dispose = async () => {
      await store.close();
      await opened.dispose();
    };
    owner = (await store.createIdentity("owner@example.org")).id;
    other = (await store.createIdentity("other@example.org")).id;
  });
  afterAll(async () => {
    await dispose?.();
  });

  /** An endpoint of `owner` with three waiting tasks in one group. */
  async function setup() {
    const endpointId = randomUUID();
    await store.registerEndpoint({ id: endpointId, ownerId: owner, name: "ep" });
    const fn = await store.registerFunction(owner, { strategy: "conduit.SourceCode", data: `() => ${Math.random()}` });
    const groupId = randomUUID();
    const uepId = randomUUID();
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    const stored = await store.insertTasks({
      ownerId: owner,
      endpointId,
      uepId,
      taskGroupId: groupId,
      taskGroupGiven: false,
      uepConfig: {},
      uepRuntime: null,
      tasks: ids.map((id) => ({ id, functionId: fn.id, argsBytes: 2, argsSha256: id })),
    });
    expect(stored.ok).toBe(true);
    await store.markTasksWaiting(ids);
    return { endpointId, functionId: fn.id, groupId, uepId, ids: ids as [string, string, string] };
  }

  it("cancels only the owner's task, only before it runs, in one statement; a late result leaves it cancelled", async () => {
    const { endpointId, uepId, ids } = await setup();
    const [waiting, running] = ids;
    expect(await store.cancelTask(randomUUID(), owner, CANCELLED)).toBeUndefined();

    const byOther = await store.cancelTask(waiting, other, CANCELLED);
    expect(byOther).toMatchObject({ cancelled: false, task: { ownerId: owner, state: "waiting-for-endpoint" } });

    const first = await store.cancelTask(waiting, owner, CANCELLED);
    expect(first).toMatchObject({
      cancelled: true,
      task: { id: waiting, state: "cancelled", error: CANCELLED, uepId },
    });
    expect(first?.task.completedAt).toBeInstanceOf(Date);
    expect(await store.cancelTask(waiting, owner, CANCELLED)).toMatchObject({
      cancelled: false,
      task: { state: "cancelled" },
    });

    await store.markTasksRunning([{ taskId: running, endpointId, sender: endpointBrokerUser(endpointId) }]);
    expect(await store.cancelTask(running, owner, CANCELLED)).toMatchObject({
      cancelled: false,
      task: { state: "running" },
    });

    const [late] = await store.storeResults([
      {
        taskId: waiting,
        endpointId,
        sender: endpointBrokerUser(endpointId),
        state: "success",
        result: { strategy: "conduit.JSONData", data: "1" },
        completedAt: Date.now(),
      },
    ]);
    expect(late).toMatchObject({ updated: false, state: "cancelled" });
    expect(await store.getTask(waiting)).toMatchObject({ state: "cancelled", result: null, error: CANCELLED });
    expect(
      (await store.markTasksRunning([{ taskId: waiting, endpointId, sender: endpointBrokerUser(endpointId) }])).changed,
    ).toBe(0);
  });

  it("lists task groups with counts per state and details one with its unfinished tasks", async () => {
    const { endpointId, groupId, ids } = await setup();
    await store.cancelTask(ids[0], owner, CANCELLED);
    await store.markTasksRunning([{ taskId: ids[1], endpointId, sender: endpointBrokerUser(endpointId) }]);

    const mine = await store.listTaskGroups(owner);
    expect(mine.find((g) => g.id === groupId)).toEqual({
      id: groupId,
      ownerId: owner,
      createdAt: expect.any(Date),
      taskCounts: { cancelled: 1, running: 1, "waiting-for-endpoint": 1 },
    });
    expect((await store.listTaskGroups(other)).map((g) => g.id)).not.toContain(groupId);

    const detail = await store.getTaskGroup(groupId);
    expect(detail?.ownerId).toBe(owner);
    expect(detail?.pending.map((t) => t.id).sort()).toEqual([ids[1], ids[2]].sort());
    expect(await store.getTaskGroup(randomUUID())).toBeUndefined();
  });

  it("deletes a function only for its owner; its tasks stay", async () => {
    const { functionId, ids } = await setup();
    expect(await store.deleteFunction(functionId, other)).toBe(false);
    expect(await store.getFunction(functionId)).toBeDefined();
    expect(await store.deleteFunction(functionId, owner)).toBe(true);
    expect(await store.getFunction(functionId)).toBeUndefined();
    expect(await store.getTask(ids[0])).toMatchObject({ functionId });
  });

  it("keeps an endpoint with unfinished tasks unless forced; forced, fails them and keeps the history", async () => {
    const { endpointId, uepId, ids } = await setup();
    await store.storeResults([
      {
        taskId: ids[0],
        endpointId,
        sender: endpointBrokerUser(endpointId),
        state: "success",
        result: { strategy: "conduit.JSONData", data: "1" },
        completedAt: Date.now(),
      },
    ]);
    expect(await store.deleteEndpoint(endpointId, other, true, DELETED)).toEqual({
      deleted: false,
      activeTasks: 0,
      failed: [],
    });
    expect(await store.deleteEndpoint(endpointId, owner, false, DELETED)).toEqual({
      deleted: false,
      activeTasks: 2,
      failed: [],
    });
    expect(await store.getEndpoint(endpointId)).toBeDefined();

    const forced = await store.deleteEndpoint(endpointId, owner, true, DELETED);
    expect(forced).toMatchObject({ deleted: true, activeTasks: 2 });
    expect(forced.failed.map((t) => [t.id, t.state, t.error]).sort()).toEqual(
      [
        [ids[1], "failed", DELETED],
        [ids[2], "failed", DELETED],
      ].sort(),
    );
    expect(await store.getEndpoint(endpointId)).toBeUndefined();
    expect(await store.getUep(uepId)).toBeUndefined();
    expect(await store.getTask(ids[0])).toMatchObject({ state: "success", endpointId });
  });
});
