/**
 * The result path's overlap (issue 23): the first result of a task this
 * replica stored is forwarded to its task group's queue while it is stored,
 * not after: its route and its sender's right to report it are known from
 * the submit. Proven with the store's result statement held open: the result
 * reaches the Executor's queue while the task is still unfinished in the
 * store, and is stored once the statement goes on. A sender the trust rules
 * refuse, a second result and a task without a route (a High-Assurance one)
 * take the stored path. A real
 * RabbitMQ vhost, a real PGlite store.
 */
import { randomUUID } from "node:crypto";
import { RESULTS_QUEUE, type ResultMessage, taskGroupResultQueue } from "@conduit/protocol";
import { describe, expect, it } from "vitest";
import { SubmittedRoutes } from "../src/tasks/submitted-routes.js";
import { successResult, useResultConsumer } from "./helpers/result-consumer.js";

describe("a result forwarded while it is stored", () => {
  const routes = new SubmittedRoutes();
  /** Endpoints publish as guest here, a shared account (allowed to report any task) unless a test removes it. */
  const shared = new Set(["guest"]);
  /** While set, the store's result statement waits for it. */
  let gate: Promise<void> | undefined;
  const suite = useResultConsumer(
    () => ({ routes, sharedAccounts: shared }),
    (store) => {
      const storeResults = store.storeResults.bind(store);
      store.storeResults = async (...args) => {
        await gate;
        return storeResults(...args);
      };
    },
  );
  const { lines } = suite;
  const store = () => suite.store;
  const channel = () => suite.channel;

  /** Two stored tasks of a new endpoint, their routes recorded as the submit records them. */
  async function storedTask() {
    const e = await suite.endpoint();
    const { endpointId } = e;
    const uepId = randomUUID();
    const taskGroupId = randomUUID();
    const taskIds = [randomUUID(), randomUUID()];
    expect((await suite.insertTasks(e, uepId, taskGroupId, taskIds)).ok).toBe(true);
    await suite.broker.ensureQueues([taskGroupResultQueue(taskGroupId)]);
    routes.add(taskIds, { endpointId, uepId, taskGroupId });
    return { endpointId, uepId, taskGroupId, taskIds };
  }

  const result = (endpointId: string, uepId: string, taskId: string, data: string) =>
    successResult(endpointId, uepId, taskId, data);
  const publish = (endpointId: string, body: unknown) => suite.publish(endpointId, body);

  /** The next message on a task group's queue (polled; the test's timeout bounds it). */
  async function nextForwarded(taskGroupId: string): Promise<ResultMessage[]> {
    for (;;) {
      const m = await channel().channel.get(taskGroupResultQueue(taskGroupId), { noAck: true });
      if (m) return (JSON.parse(m.content.toString()) as { results: ResultMessage[] }).results;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async function until(probe: () => Promise<boolean>): Promise<void> {
    while (!(await probe())) await new Promise((r) => setTimeout(r, 20));
  }

  it("reaches the task group's queue before it is stored, and is stored once the statement goes on", async () => {
    const t = await storedTask();
    let release = () => {};
    gate = new Promise((r) => (release = r));
    try {
      publish(t.endpointId, result(t.endpointId, t.uepId, t.taskIds[0]!, "42"));
      const forwarded = await nextForwarded(t.taskGroupId);
      expect(forwarded).toMatchObject([{ taskId: t.taskIds[0], state: "success", result: { data: "42" } }]);
      // Forwarded, not yet stored: the statement is still waiting.
      expect(await store().getTasks([t.taskIds[0]!])).toMatchObject([{ state: "waiting-for-endpoint", result: null }]);
    } finally {
      release();
      gate = undefined;
    }
    await until(async () => (await store().getTasks([t.taskIds[0]!]))[0]?.state === "success");

    // A second result of the same task, with the first result of the other one in the same message:
    // the second takes the stored path (the task is finished: not forwarded), the other goes early.
    publish(t.endpointId, {
      v: 1,
      kind: "results",
      results: [result(t.endpointId, t.uepId, t.taskIds[0]!, "43"), result(t.endpointId, t.uepId, t.taskIds[1]!, "44")],
    });
    expect(await nextForwarded(t.taskGroupId)).toMatchObject([{ taskId: t.taskIds[1], result: { data: "44" } }]);
    await until(async () => (await store().getTasks([t.taskIds[1]!]))[0]?.state === "success");
    expect((await channel().channel.checkQueue(taskGroupResultQueue(t.taskGroupId))).messageCount).toBe(0);
    expect(await store().getTasks([t.taskIds[0]!])).toMatchObject([{ state: "success", result: { data: "42" } }]);
  });

  it("does not forward a result from an account that may not report the task: the store refuses it", async () => {
    const t = await storedTask();
    // guest is now no shared account: neither the task's UEP nor its endpoint account.
    shared.delete("guest");
    try {
      publish(t.endpointId, result(t.endpointId, t.uepId, t.taskIds[0]!, "666"));
      await until(async () => lines.some((l) => l.includes(t.taskIds[0]!)));
    } finally {
      shared.add("guest");
    }
    expect(lines.find((l) => l.includes(t.taskIds[0]!))).toContain(
      `a result for task ${t.taskIds[0]}, which it may not report`,
    );
    expect(await store().getTasks([t.taskIds[0]!])).toMatchObject([{ state: "waiting-for-endpoint", result: null }]);
    expect((await channel().channel.checkQueue(taskGroupResultQueue(t.taskGroupId))).messageCount).toBe(0);
    // Its route stays for the task's own account.
    expect(routes.take(t.taskIds[0]!, t.endpointId, `conduit-uep-${t.uepId}`, false)).toMatchObject({
      taskGroupId: t.taskGroupId,
    });
  });

  it("gives a High-Assurance task no route: its notice is forwarded only once its result is stored", async () => {
    const t = await storedTask();
    routes.forget(t.taskIds[0]!); // as the submit does for an HA endpoint's tasks
    let release = () => {};
    gate = new Promise((r) => (release = r));
    try {
      publish(t.endpointId, result(t.endpointId, t.uepId, t.taskIds[0]!, "7"));
      await until(async () => (await channel().channel.checkQueue(RESULTS_QUEUE)).messageCount === 0);
      // Taken, held by the statement: nothing forwarded yet.
      expect((await channel().channel.checkQueue(taskGroupResultQueue(t.taskGroupId))).messageCount).toBe(0);
    } finally {
      release();
      gate = undefined;
    }
    expect(await nextForwarded(t.taskGroupId)).toMatchObject([{ taskId: t.taskIds[0], result: { data: "7" } }]);
    expect(await store().getTasks([t.taskIds[0]!])).toMatchObject([{ state: "success" }]);
  });
});
