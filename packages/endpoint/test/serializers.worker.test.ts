/**
 * The worker's side of the serialization strategies (executeTask, as every
 * engine's workers run it): decoding per strategy, results in the task's data
 * strategy, the submitter's Node version, BundledCode, and the result limit.
 */
import {
  BUNDLED_CODE,
  deserializeData,
  encodeBundledCode,
  JSON_DATA,
  type Payload,
  SOURCE_CODE,
  STRUCTURED_DATA,
  serializeCall,
} from "@conduit/protocol";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import type { EngineResult, EngineTask } from "../src/engine-task.js";
import {
  DEFAULT_RESULT_SIZE_LIMIT,
  executeTask,
  RESULT_SIZE_LIMIT_ENV,
  resultSizeLimit,
  withResultSizeLimit,
} from "../src/worker/execute-task.js";

let n = 0;
function task(source: string, args: unknown[], strategy: string, extra: Partial<EngineTask> = {}): EngineTask {
  n++;
  return {
    taskId: `s${n}`,
    functionId: `sf${n}`,
    function: { strategy: SOURCE_CODE, data: source },
    args: serializeCall(args, strategy),
    ...extra,
  };
}

function value(result: EngineResult): { payload: Payload; value: unknown } {
  if (!result.ok) throw new Error(`task failed: ${result.error.message}`);
  return { payload: result.value, value: deserializeData(result.value) };
}

afterEach(() => {
  delete process.env[RESULT_SIZE_LIMIT_ENV];
});

describe("worker: data strategies", () => {
  it("decodes StructuredData arguments and returns the result in StructuredData", async () => {
    const when = new Date(86_400_000);
    const result = await executeTask(
      task(
        "(m, d, n) => ({ keys: [...m.keys()], next: new Date(d.getTime() + 1), big: n * 2n, set: new Set([1, 2]), re: /x/g, und: undefined })",
        [new Map([["a", 1]]), when, 2n ** 64n],
        STRUCTURED_DATA,
      ),
    );
    const { payload, value: v } = value(result);
    expect(payload.strategy).toBe(STRUCTURED_DATA);
    expect(v).toEqual({
      keys: ["a"],
      next: new Date(86_400_001),
      big: 2n ** 65n,
      set: new Set([1, 2]),
      re: /x/g,
      und: undefined,
    });
    // StructuredData carries undefined as is; JSONData turns a missing result into null.
    expect(value(await executeTask(task("() => {}", [], STRUCTURED_DATA))).value).toBeUndefined();
    expect(value(await executeTask(task("() => {}", [], JSON_DATA))).value).toBeNull();
  });

  it("returns results in JSONData for a JSONData task, refusing what JSON cannot carry, with its path", async () => {
    const ok = value(await executeTask(task("(a) => ({ sum: a.x + 1 })", [{ x: 41 }], JSON_DATA)));
    expect(ok.payload).toEqual({ strategy: JSON_DATA, data: '{"sum":42}' });
    const refused = await executeTask(task("() => ({ at: new Date(0) })", [], JSON_DATA));
    expect(refused).toMatchObject({ ok: false, error: { code: "SERIALIZATION_FAILED", name: "SerializationError" } });
    if (!refused.ok) {
      expect(refused.error.message).toBe(
        `The result of task ${refused.taskId} cannot be serialized with conduit.JSONData (result.at is a Date; conduit.JSONData carries plain JSON only: use conduit.StructuredData or convert it); return a value that strategy carries.`,
      );
    }
    const fn = await executeTask(task("() => [() => 1]", [], STRUCTURED_DATA));
    if (fn.ok) throw new Error("expected a failure");
    expect(fn.error.message).toMatch(/\(result\[0\] is a function, which conduit.StructuredData cannot carry;/);
  });

  it("round-trips whatever each data strategy carries through a task (property)", async () => {
    const json = fc.jsonValue().map((v) => JSON.parse(JSON.stringify(v)) as unknown);
    const structured = fc.oneof(json, fc.bigInt(), fc.date({ noInvalidDate: true }), fc.float64Array());
    for (const [strategy, arb] of [
      [JSON_DATA, json],
      [STRUCTURED_DATA, structured],
    ] as const) {
      await fc.assert(
        fc.asyncProperty(arb, async (arg) => {
          const result = await executeTask(task("(x) => [x]", [arg], strategy));
          const out = value(result);
          expect(out.payload.strategy).toBe(strategy);
          expect(out.value).toEqual([arg]);
        }),
        { numRuns: 60 },
      );
    }
  });

  it("fails a StructuredData task from a newer Node major than the worker's, naming both versions", async () => {
    const ours = process.versions.node;
    const newer = `v${Number(ours.split(".")[0]) + 1}.1.0`;
    const submitter = { nodeVersion: newer, sdkVersion: "0.1.0" };
    const refused = await executeTask(task("() => 1", [1], STRUCTURED_DATA, { submitter }));
    expect(refused).toMatchObject({
      ok: false,
      error: { code: "DESERIALIZATION_FAILED", name: "DeserializationError" },
    });
    if (!refused.ok) {
      expect(refused.error.message).toBe(
        `The arguments of task ${refused.taskId} came in conduit.StructuredData from Node ${newer.slice(1)}, newer than this worker's Node ${ours}; run the endpoint's workers on Node ${Number(ours.split(".")[0]) + 1} or newer, or submit with conduit.JSONData.`,
      );
      expect(refused.error.stack).toBeUndefined();
    }
    // JSONData does not depend on the Node version; the same major is fine.
    expect(value(await executeTask(task("(x) => x", [1], JSON_DATA, { submitter }))).value).toBe(1);
    const same = { nodeVersion: `v${ours}`, sdkVersion: "0.1.0" };
    expect(value(await executeTask(task("(x) => x", [1], STRUCTURED_DATA, { submitter: same }))).value).toBe(1);
  });
});

describe("worker: code strategies", () => {
  it("runs a conduit.BundledCode export, plain or async", async () => {
    const code =
      "const base = 40; export function add(a) { return a + base; } export const later = async (a) => a * 2;";
    const bundled = (exportName: string): Payload => ({
      strategy: BUNDLED_CODE,
      data: encodeBundledCode(code, exportName, []),
    });
    const plain = await executeTask({ ...task("", [2], STRUCTURED_DATA), function: bundled("add") });
    expect(value(plain).value).toBe(42);
    const later = await executeTask({ ...task("", [21], JSON_DATA), function: bundled("later") });
    expect(value(later).payload).toEqual({ strategy: JSON_DATA, data: "42" });
  });
});

describe("worker: result limit", () => {
  it("fails a result over the limit naming its size and the limit; 10 MB by default", async () => {
    expect(resultSizeLimit({})).toBe(DEFAULT_RESULT_SIZE_LIMIT);
    expect(DEFAULT_RESULT_SIZE_LIMIT).toBe(10_000_000);
    expect(withResultSizeLimit({}, 5)).toEqual({ [RESULT_SIZE_LIMIT_ENV]: "5" });
    expect(withResultSizeLimit({}, undefined)).toEqual({});

    // Just under and just over: JSON text "xxx…" is the length plus two quotes, plus the strategy name.
    const overhead = JSON_DATA.length + 2;
    process.env[RESULT_SIZE_LIMIT_ENV] = String(100 + overhead);
    expect((await executeTask(task("(n) => 'x'.repeat(n)", [100], JSON_DATA))).ok).toBe(true);
    const over = await executeTask(task("(n) => 'x'.repeat(n)", [101], JSON_DATA));
    expect(over).toMatchObject({ ok: false, error: { code: "RESULT_TOO_LARGE", name: "MaxResultSizeExceeded" } });
    if (!over.ok) {
      expect(over.error.message).toBe(
        `The result of task ${over.taskId} is ${101 + overhead} bytes encoded, over this endpoint's result limit of ${100 + overhead} bytes (engine.result_size_limit); return less data (e.g. write it to a file and return its path) or ask the endpoint's administrator to raise the limit.`,
      );
    }

    delete process.env[RESULT_SIZE_LIMIT_ENV];
    const big = await executeTask(task("() => new Uint8Array(10_000_001)", [], STRUCTURED_DATA));
    if (big.ok) throw new Error("expected the default limit to refuse 10 MB + 1 of bytes");
    expect(big.error.message).toMatch(/over this endpoint's result limit of 10000000 bytes/);
  });
});
