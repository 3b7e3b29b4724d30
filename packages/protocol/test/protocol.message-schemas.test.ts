import { randomUUID } from "node:crypto";
import {
  BadMessageError,
  type BrokerMessage,
  decodeMessage,
  decodeMessageKeepingGoodResults,
  MESSAGE_SCHEMAS,
  type MessageKind,
  type ResultMessage,
  type TaskMessage,
} from "@conduit/protocol";
import { describe, expect, it } from "vitest";

const id = () => randomUUID();
const payload = { strategy: "conduit.JSONData", data: "1" };
const error = { code: "TASK_EXCEPTION", name: "Error", message: "boom", cause: { code: "X", name: "E", message: "m" } };

function result(): ResultMessage {
  return {
    v: 1,
    kind: "result",
    taskId: id(),
    endpointId: id(),
    uepId: id(),
    taskGroupId: id(),
    state: "failed",
    result: payload,
    error,
    completedAt: 1,
    highAssurance: false,
  };
}

function task(): TaskMessage {
  return {
    v: 1,
    kind: "task",
    taskId: id(),
    functionId: id(),
    endpointId: id(),
    uepId: id(),
    taskGroupId: id(),
    function: { strategy: "conduit.SourceCode", data: "() => 1" },
    args: payload,
    resourceSpecification: { num_nodes: 1 },
    submitter: { nodeVersion: "22.0.0", sdkVersion: "0.1.0" },
  };
}

/** A valid message of each kind, with every optional field set, so each field is exercised. */
const VALID: { [K in MessageKind]: Extract<BrokerMessage, { kind: K }> } = {
  task: task(),
  tasks: { v: 1, kind: "tasks", tasks: [task(), task()] },
  cancel: { v: 1, kind: "cancel", endpointId: id(), uepId: id(), taskIds: [id(), id()] },
  result: result(),
  results: { v: 1, kind: "results", results: [result(), result()] },
  task_status: {
    v: 1,
    kind: "task_status",
    endpointId: id(),
    uepId: id(),
    state: "running",
    taskIds: [id()],
    sentAt: 1,
  },
  start_uep: {
    v: 1,
    kind: "start_uep",
    endpointId: id(),
    uepId: id(),
    uepName: "uep.a.b",
    identity: {
      id: id(),
      username: "ada@localhost",
      name: "Ada",
      email: "ada@example.org",
      organization: "Lab",
      identity_provider: "local",
    },
    userEndpointConfig: { worker_init: "" },
    userRuntime: { node_version: "22", sdk_version: "0.1.0", platform: "linux", arch: "x64", hostname: "h" },
    amqpUrl: "amqp://u:p@127.0.0.1:5672",
    sentAt: 1,
  },
  heartbeat: { v: 1, kind: "heartbeat", role: "uep", endpointId: id(), uepId: id(), period: 30, error, sentAt: 1 },
};

const KINDS = Object.keys(MESSAGE_SCHEMAS) as MessageKind[];

function decodeError(kind: MessageKind, body: unknown): BadMessageError {
  try {
    decodeMessage(JSON.stringify(body), kind);
  } catch (err) {
    expect(err).toBeInstanceOf(BadMessageError);
    expect((err as BadMessageError).code).toBe("BAD_MESSAGE");
    return err as BadMessageError;
  }
  throw new Error(`a ${kind} message was accepted: ${JSON.stringify(body)}`);
}

describe.each(KINDS)("the %s message", (kind) => {
  const schema = MESSAGE_SCHEMAS[kind];
  const fields = Object.keys(schema.properties).filter((f) => f !== "v" && f !== "kind");

  it("passes when valid, as it was sent", () => {
    expect(decodeMessage(JSON.stringify(VALID[kind]), kind)).toEqual(VALID[kind]);
  });

  const types = schema.properties as Readonly<Record<string, { type?: string }>>;
  it.each(fields)("names %s when it has the wrong type", (field) => {
    // `true` fits no field of any message but the booleans, and `"yes"` no boolean.
    const wrong = types[field]?.type === "boolean" ? "yes" : true;
    const err = decodeError(kind, { ...VALID[kind], [field]: wrong });
    expect(err.message).toMatch(new RegExp(`^Broker message ${kind}: ${field} is not .+; it was dropped\\.$`));
    expect(err.details).toMatchObject({ kind, field, problem: expect.stringMatching(new RegExp(`^${field} is not `)) });
  });

  it.each(fields.filter((f) => (schema.required as readonly string[]).includes(f)))(
    "names %s when it is missing",
    (field) => {
      const { [field]: _, ...rest } = VALID[kind] as unknown as Record<string, unknown>;
      expect(decodeError(kind, rest).message).toBe(`Broker message ${kind}: ${field} is missing; it was dropped.`);
    },
  );

  const properties = schema.properties as Readonly<Record<string, { format?: string }>>;
  it.each(fields.filter((f) => properties[f]?.format === "uuid"))("names %s when it is not a UUID", (field) => {
    expect(decodeError(kind, { ...VALID[kind], [field]: "not-a-uuid" }).message).toBe(
      `Broker message ${kind}: ${field} is not a UUID; it was dropped.`,
    );
  });
});

describe("fields inside fields", () => {
  const cases: Array<[MessageKind, (m: Record<string, unknown>) => unknown, string]> = [
    ["task", (m) => ({ ...m, function: { strategy: "conduit.SourceCode" } }), "function.data is missing"],
    ["task", (m) => ({ ...m, args: { strategy: 1, data: "" } }), "args.strategy is not a string"],
    ["task", (m) => ({ ...m, submitter: { nodeVersion: "22" } }), "submitter.sdkVersion is missing"],
    ["task", (m) => ({ ...m, resourceSpecification: [1] }), "resourceSpecification is not an object"],
    ["cancel", (m) => ({ ...m, taskIds: [id(), "x"] }), "taskIds[1] is not a UUID"],
    ["result", (m) => ({ ...m, state: "running" }), 'state "running" is not one of success, failed, cancelled'],
    ["result", (m) => ({ ...m, error: { code: "X", name: "E" } }), "error.message is missing"],
    [
      "result",
      (m) => ({ ...m, error: { ...error, cause: { ...error, cause: 3 } } }),
      "error.cause.cause is not an object",
    ],
    ["result", (m) => ({ ...m, completedAt: "soon" }), "completedAt is not a number"],
    [
      "results",
      (m) => ({ ...m, results: [result(), { ...result(), taskId: "t" }] }),
      "results[1].taskId is not a UUID",
    ],
    ["results", (m) => ({ ...m, results: [result(), null] }), "results[1] is not an object"],
    ["task_status", (m) => ({ ...m, state: "success" }), 'state is not "running"'],
    ["start_uep", (m) => ({ ...m, identity: { id: id() } }), "identity.username is missing"],
    ["start_uep", (m) => ({ ...m, userRuntime: "22" }), "userRuntime is not an object or null"],
    ["start_uep", (m) => ({ ...m, userEndpointConfig: null }), "userEndpointConfig is not an object"],
    ["heartbeat", (m) => ({ ...m, period: -1 }), "period is not a number >= 0"],
    ["heartbeat", (m) => ({ ...m, role: "sdk" }), 'role "sdk" is not one of mep, uep'],
    ["heartbeat", ({ uepId: _, ...m }) => m, "uepId is missing (a uep heartbeat names its UEP)"],
    [
      "heartbeat",
      (m) => ({ ...m, engine: { type: "ThreadPoolEngine", totalWorkers: 2, idleWorkers: -1, pendingTasks: 0 } }),
      "engine.idleWorkers is not a number >= 0",
    ],
  ];
  it.each(cases)("a %s message: %#", (kind, change, problem) => {
    const body = change(VALID[kind] as unknown as Record<string, unknown>);
    expect(decodeError(kind, body).message).toBe(`Broker message ${kind}: ${problem}; it was dropped.`);
  });

  it("a start_uep message may carry a null runtime, and a mep heartbeat no uepId", () => {
    expect(decodeMessage(JSON.stringify({ ...VALID.start_uep, userRuntime: null }), "start_uep").userRuntime).toBe(
      null,
    );
    const { uepId: _, ...mep } = { ...VALID.heartbeat, role: "mep" };
    expect(decodeMessage(JSON.stringify(mep), "heartbeat").role).toBe("mep");
  });

  it("a uep heartbeat may report its engine's workers and blocks", () => {
    const engine = { type: "HighThroughputEngine", totalWorkers: 4, idleWorkers: 1, pendingTasks: 3, blocks: 2 };
    expect(decodeMessage(JSON.stringify({ ...VALID.heartbeat, engine }), "heartbeat").engine).toEqual(engine);
  });

  it("fields a schema does not name are left alone (a newer sender may add one)", () => {
    expect(decodeMessage(JSON.stringify({ ...VALID.cancel, reason: "x" }), "cancel")).toMatchObject({ reason: "x" });
  });
});

describe("a malformed task keeps its sound task id, so its receiver can fail it", () => {
  it("in the error's details", () => {
    const task = VALID.task;
    expect(decodeError("task", { ...task, args: 1 }).details).toEqual({
      kind: "task",
      field: "args",
      problem: "args is not an object",
      taskId: task.taskId,
    });
    expect(decodeError("task", { ...task, taskId: "t" }).details).toEqual({
      kind: "task",
      field: "taskId",
      problem: "taskId is not a UUID",
    });
  });
});

describe("decodeMessageKeepingGoodResults", () => {
  it("keeps the good results of a results message and reports each bad one by its index", () => {
    const [a, b] = [result(), result()];
    const bad: Array<[string, number]> = [];
    const decoded = decodeMessageKeepingGoodResults(
      JSON.stringify({ v: 1, kind: "results", results: [a, { ...result(), uepId: 7 }, b, "x", null] }),
      ["result", "results"],
      (err, index) => bad.push([err.message, index]),
    );
    expect(decoded).toEqual({ v: 1, kind: "results", results: [a, b] });
    expect(bad).toEqual([
      ["Broker message results: results[1].uepId is not a string; that result was dropped.", 1],
      ["Broker message results: results[3] is not an object; that result was dropped.", 3],
      ["Broker message results: results[4] is not an object; that result was dropped.", 4],
    ]);
  });

  it("keeps the good tasks of a tasks message, naming each bad one with its task id when that is sound", () => {
    const [a, b] = [task(), task()];
    const broken = { ...task(), args: { strategy: "conduit.JSONData" } };
    const bad: Array<[string, number, string | undefined]> = [];
    const decoded = decodeMessageKeepingGoodResults(
      JSON.stringify({ v: 1, kind: "tasks", tasks: [a, broken, b, { ...task(), taskId: "t" }] }),
      ["task", "tasks"],
      (err, index) => bad.push([err.message, index, err.details.taskId]),
    );
    expect(decoded).toEqual({ v: 1, kind: "tasks", tasks: [a, b] });
    expect(bad).toEqual([
      ["Broker message tasks: tasks[1].args.data is missing; that task was not run.", 1, broken.taskId],
      ["Broker message tasks: tasks[3].taskId is not a UUID; that task was not run.", 3, undefined],
    ]);
  });

  it("checks every other message whole", () => {
    const bad: unknown[] = [];
    const keep = (body: unknown) =>
      decodeMessageKeepingGoodResults(JSON.stringify(body), ["result", "results"], (err) => bad.push(err));
    expect(() => keep({ v: 1, kind: "results", results: {} })).toThrow(
      "Broker message results: results is not a list; it was dropped.",
    );
    expect(() => keep({ ...result(), taskId: 5 })).toThrow("Broker message result: taskId is not a string");
    expect(bad).toEqual([]);
  });
});

describe("the envelope", () => {
  it("refuses non-JSON, a non-object and another kind with a BadMessageError", () => {
    expect(() => decodeMessage("nope", "task")).toThrow(BadMessageError);
    expect(() => decodeMessage("[1]", "task")).toThrow("Broker message is not a JSON object; it was dropped.");
    expect(() => decodeMessage(JSON.stringify(VALID.cancel), "task")).toThrow(
      "Broker message of kind cancel is not one of task.",
    );
  });
});
