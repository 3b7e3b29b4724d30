import {
  ConduitError,
  deserializeData,
  JSON_DATA,
  payloadBytes,
  STRUCTURED_DATA,
  serializeData,
  serializeJson,
  serializeStructured,
} from "@conduit/protocol";
import fc from "fast-check";
import { describe, expect, it } from "vitest";

const roundTrip = (value: unknown, strategy: string) => deserializeData(serializeData(value, strategy, "args"));

/** The message a refusal carries, or a failure if there was none. */
function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConduitError);
    expect((err as ConduitError).code).toBe("SERIALIZATION_FAILED");
    return (err as Error).message;
  }
  throw new Error("expected a refusal");
}

/** How a path segment is printed: `.name` for identifiers, `["other key"]`, `[0]`. */
const segment = (key: string | number) =>
  typeof key === "number" ? `[${key}]` : /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;

/** `bad` placed at `path` inside arrays and objects, with a JSON sibling at every level. */
function plant(path: Array<string | number>, bad: unknown, sibling: unknown): unknown {
  let value = bad;
  for (const key of [...path].reverse()) {
    if (typeof key === "number") {
      const arr: unknown[] = Array.from({ length: key + 1 }, () => sibling);
      arr[key] = value;
      value = arr;
    } else {
      value = key === "sibling" ? { [key]: value } : { sibling, [key]: value };
    }
  }
  return value;
}

const pathArb = fc.array(fc.oneof(fc.string({ maxLength: 6 }), fc.nat({ max: 3 })), { maxLength: 4 });
/** JSON text without negative zero, which JSON itself writes as 0. */
const jsonArb = fc.jsonValue().map((v) => JSON.parse(JSON.stringify(v)) as unknown);

class Point {
  constructor(
    public x: number,
    public y: number,
  ) {}
  get norm() {
    return Math.hypot(this.x, this.y);
  }
}

describe("conduit.JSONData", () => {
  it("round-trips every plain JSON value (property)", () => {
    fc.assert(
      fc.property(jsonArb, (value) => {
        const payload = serializeJson(value, "args");
        expect(payload.strategy).toBe(JSON_DATA);
        expect(deserializeData(payload)).toEqual(value);
      }),
    );
    expect(roundTrip(Object.assign(Object.create(null), { a: 1 }), JSON_DATA)).toEqual({ a: 1 });
  });

  it("refuses, naming the path, every value that is not plain JSON (property)", () => {
    const bads: Array<[unknown, string]> = [
      [undefined, "is undefined"],
      [Number.NaN, "is NaN"],
      [Number.POSITIVE_INFINITY, "is Infinity"],
      [Number.NEGATIVE_INFINITY, "is -Infinity"],
      [10n, "is a BigInt"],
      [new Map(), "is a Map"],
      [new Set([1]), "is a Set"],
      [new Date(0), "is a Date"],
      [/x/, "is a RegExp"],
      [new Point(1, 2), "is an instance of Point"],
      [new Uint8Array(2), "is a Uint8Array"],
      [() => 1, "is a function"],
      [Symbol("s"), "is a symbol"],
      [new Error("e"), "is an Error"],
    ];
    fc.assert(
      fc.property(pathArb, fc.constantFrom(...bads), jsonArb, (path, [bad, what], sibling) => {
        const message = refusal(() => serializeJson(plant(path, bad, sibling), "args"));
        expect(message).toBe(
          `args${path.map(segment).join("")} ${what}; conduit.JSONData carries plain JSON only: use conduit.StructuredData or convert it.`,
        );
      }),
    );
  });

  it("refuses cycles, sparse arrays and symbol keys rather than coercing them", () => {
    const cyclic: Record<string, unknown> = { a: [1] };
    (cyclic.a as unknown[]).push(cyclic);
    expect(refusal(() => serializeJson([cyclic], "args"))).toMatch(
      /^args\[0\]\.a\[1\] refers back to one of its parents \(a cycle\);/,
    );
    // A shared (not cyclic) object is fine.
    const shared = { k: 1 };
    expect(roundTrip([shared, shared], JSON_DATA)).toEqual([{ k: 1 }, { k: 1 }]);
    // biome-ignore lint/suspicious/noSparseArray: the point of the test.
    expect(refusal(() => serializeJson({ list: [1, , 3] }, "args"))).toMatch(
      /^args\.list is a sparse array \(index 1 is a hole\);/,
    );
    expect(refusal(() => serializeJson({ [Symbol("k")]: 1 }, "result"))).toMatch(/^result has a symbol key;/);
  });
});

/** Values StructuredData promises to carry, nested in arrays, objects, Maps and Sets. */
const structuredArb = fc.letrec((tie) => ({
  leaf: fc.oneof(
    fc.string(),
    fc.double(),
    fc.bigInt(),
    fc.boolean(),
    fc.constant(null),
    fc.constant(undefined),
    fc.date({ noInvalidDate: true }),
    fc.constantFrom(/a+b/gi, /^x$/m, /[\s\S]/su),
    fc.uint8Array(),
    fc.float64Array(),
    fc.int32Array(),
    fc.bigInt64Array(),
    fc.string().map((m) => new Error(m)),
    fc.string().map((m) => new RangeError(m)),
  ),
  node: fc.oneof(
    { depthSize: "small" },
    tie("leaf"),
    fc.array(tie("node"), { maxLength: 4 }),
    fc.dictionary(fc.string(), tie("node"), { maxKeys: 4 }),
    fc.array(fc.tuple(tie("leaf"), tie("node")), { maxLength: 3 }).map((entries) => new Map(entries)),
    fc.array(tie("leaf"), { maxLength: 3 }).map((items) => new Set(items)),
  ),
})).node;

describe("conduit.StructuredData", () => {
  it("round-trips Map, Set, Date, BigInt, RegExp, typed arrays, Error and plain data (property)", () => {
    fc.assert(
      fc.property(structuredArb, (value) => {
        const payload = serializeStructured(value, "args");
        expect(payload.strategy).toBe(STRUCTURED_DATA);
        expect(payload.data).toMatch(/^[A-Za-z0-9+/]*={0,2}$/);
        expect(deserializeData(payload)).toEqual(value);
      }),
      { numRuns: 200 },
    );
  });

  it("keeps cycles, -0, NaN, sparse arrays and an Error's name, message and stack", () => {
    const cyclic: Record<string, unknown> = { name: "root" };
    cyclic.self = cyclic;
    const back = roundTrip(cyclic, STRUCTURED_DATA) as Record<string, unknown>;
    expect(back.self).toBe(back);
    expect(Object.is(roundTrip(-0, STRUCTURED_DATA), -0)).toBe(true);
    expect(roundTrip(Number.NaN, STRUCTURED_DATA)).toBeNaN();
    // biome-ignore lint/suspicious/noSparseArray: the point of the test.
    expect(1 in (roundTrip([1, , 3], STRUCTURED_DATA) as unknown[])).toBe(false);

    const error = new TypeError("bad input");
    const copy = roundTrip(error, STRUCTURED_DATA) as Error;
    expect(copy).toBeInstanceOf(TypeError);
    expect([copy.name, copy.message, copy.stack]).toEqual(["TypeError", "bad input", error.stack]);
  });

  it("delivers a subclass of Error as its base class and a class instance as a plain object", () => {
    class NotFound extends RangeError {}
    const copy = roundTrip(new NotFound("gone"), STRUCTURED_DATA) as Error;
    expect(copy).toBeInstanceOf(RangeError);
    expect(copy).not.toBeInstanceOf(NotFound);
    expect(copy.message).toBe("gone");

    const point = roundTrip(new Point(3, 4), STRUCTURED_DATA);
    expect(Object.getPrototypeOf(point)).toBe(Object.prototype);
    expect(point).toStrictEqual({ x: 3, y: 4 });
  });

  it("refuses functions and symbols, naming the path (property)", () => {
    fc.assert(
      fc.property(
        pathArb,
        fc.constantFrom<[unknown, string]>([() => 1, "a function"], [Symbol("s"), "a symbol"]),
        jsonArb,
        (path, [bad, what], sibling) => {
          const message = refusal(() => serializeStructured(plant(path, bad, sibling), "args"));
          expect(message).toMatch(
            new RegExp(`^${escapeRegExp(`args${path.map(segment).join("")} is ${what}, which`)}`),
          );
        },
      ),
    );
    expect(refusal(() => serializeStructured(new Map([["k", () => 1]]), "result"))).toMatch(
      /^result\.get\("k"\) is a function, which conduit.StructuredData cannot carry; pass data instead/,
    );
    expect(refusal(() => serializeStructured([new Set([Symbol.iterator])], "args"))).toMatch(
      /^args\[0\]\.values\(\)\[0\] is a symbol/,
    );
    expect(refusal(() => serializeStructured({ p: Promise.resolve() }, "args"))).toMatch(
      /^args cannot be cloned \(#<Promise> could not be cloned\.\)/,
    );
  });

  it("refuses a payload from a newer Node major than this one, naming both versions", () => {
    const payload = serializeStructured({ when: new Date(0) });
    const ours = process.versions.node;
    const major = Number(ours.split(".")[0]);
    expect(() => deserializeData(payload, { producerNodeVersion: `v${major + 1}.0.0`, what: "The arguments" })).toThrow(
      `The arguments came in conduit.StructuredData from Node ${major + 1}.0.0, newer than this worker's Node ${ours}; run the endpoint's workers on Node ${major + 1} or newer, or submit with conduit.JSONData.`,
    );
    let error: unknown;
    try {
      deserializeData(payload, { producerNodeVersion: `${major + 1}.2.3` });
    } catch (err) {
      error = err;
    }
    expect(error).toMatchObject({ code: "DESERIALIZATION_FAILED", name: "DeserializationError" });
    // The same or an older major decodes.
    expect(deserializeData(payload, { producerNodeVersion: ours })).toEqual({ when: new Date(0) });
    expect(deserializeData(payload, { producerNodeVersion: `v${major - 1}.9.0` })).toEqual({ when: new Date(0) });
    // JSONData does not depend on the Node version.
    expect(deserializeData(serializeJson(1), { producerNodeVersion: "v999.0.0" })).toBe(1);
  });
});

describe("payloads", () => {
  it("name their strategy; an unknown strategy or broken data is a DeserializationError naming the fix", () => {
    expect(serializeData(1).strategy).toBe(STRUCTURED_DATA);
    expect(serializeData(1, JSON_DATA)).toEqual({ strategy: JSON_DATA, data: "1" });
    expect(() => serializeData(1, "conduit.PickleData")).toThrow(
      "Data strategy conduit.PickleData is not known; use conduit.JSONData or conduit.StructuredData.",
    );
    expect(() => deserializeData({ strategy: "conduit.PickleData", data: "" }, { what: "The result" })).toThrow(
      "The result uses data strategy conduit.PickleData, which is not known here; serialize it with conduit.JSONData or conduit.StructuredData.",
    );
    expect(() => deserializeData({ strategy: JSON_DATA, data: "{" })).toThrow(
      /^The payload is not valid conduit.JSONData/,
    );
    expect(() => deserializeData({ strategy: STRUCTURED_DATA, data: "AAAA" })).toThrow(
      /^The payload is not valid conduit.StructuredData/,
    );
    expect(payloadBytes({ strategy: JSON_DATA, data: "é" })).toBe(JSON_DATA.length + 2);
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
