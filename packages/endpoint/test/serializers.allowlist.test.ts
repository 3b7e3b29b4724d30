import { describe, expect, it } from "vitest";
import { createEngine } from "../src/engines/registry.js";
import { SerializerAllowlist } from "../src/engines/serializer-allowlist.js";
import { ConfigError } from "../src/errors.js";

const task = (code: string, data: string) => ({
  function: { strategy: code, data: "() => 1" },
  args: { strategy: data, data: "{}" },
});

const allowlist = (allowed_serializers: unknown) => SerializerAllowlist.fromEngineConfig({ allowed_serializers });

function configError(list: unknown): string {
  try {
    allowlist(list);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error(`expected ${JSON.stringify(list)} to be refused`);
}

describe("engine.allowed_serializers", () => {
  it("allows everything when unset", () => {
    expect(SerializerAllowlist.fromEngineConfig({ type: "ThreadPoolEngine" })).toBeUndefined();
    expect(allowlist(null)).toBeUndefined();
  });

  it("refuses a list without one code and one data entry, worded exactly as Globus Compute's", () => {
    expect(configError(["conduit.SourceCode"])).toBe(
      'Deserialization allowlists must contain at least one code and one data deserializer/wildcard (got: ["conduit.SourceCode"])',
    );
    expect(configError(["conduit.*Data", "conduit.JSONData"])).toBe(
      'Deserialization allowlists must contain at least one code and one data deserializer/wildcard (got: ["conduit.*Data","conduit.JSONData"])',
    );
    expect(configError([])).toMatch(/at least one code and one data deserializer\/wildcard \(got: \[\]\)$/);
    expect(configError("conduit.*Code")).toBe(
      'engine.allowed_serializers must be a list of serialization strategy names (got "conduit.*Code"); e.g. [conduit.SourceCode, conduit.JSONData].',
    );
  });

  it("refuses a Globus Compute name, naming the Conduit equivalent, and a name Conduit does not know", () => {
    expect(configError(["globus_compute_sdk.serialize.JSONData", "conduit.*Code"])).toBe(
      "engine.allowed_serializers names globus_compute_sdk.serialize.JSONData, a Globus Compute serializer; write its Conduit equivalent conduit.JSONData instead.",
    );
    expect(configError(["globus_compute_sdk.serialize.PureSourceTextInspect"])).toMatch(
      /write its Conduit equivalent conduit.SourceCode instead\.$/,
    );
    expect(configError(["globus_compute_sdk.*Code", "conduit.*Data"])).toMatch(
      /globus_compute_sdk.\*Code, a Globus Compute serializer; write its Conduit equivalent conduit.\*Code instead\.$/,
    );
    expect(configError(["conduit.BundleCode", "conduit.*Data"])).toBe(
      "engine.allowed_serializers names conduit.BundleCode, which is not a Conduit serializer; use conduit.SourceCode, conduit.BundledCode, conduit.ShellCode, conduit.JSONData, conduit.StructuredData, conduit.*Code, conduit.*Data.",
    );
    // Not globs: only the two special values are wildcards.
    expect(configError(["conduit.*", "conduit.*Data"])).toMatch(/names conduit\.\*, which is not a Conduit serializer/);
  });

  it("checks the function's and the arguments' strategies, worded as the seed shows", () => {
    const exact = allowlist(["conduit.SourceCode", "conduit.JSONData"])!;
    expect(exact.check(task("conduit.SourceCode", "conduit.JSONData"))).toBeUndefined();
    expect(exact.check(task("conduit.BundledCode", "conduit.JSONData"))).toEqual({
      code: "DESERIALIZATION_FAILED",
      name: "DeserializationError",
      message: [
        "Deserialization failed:",
        "  Code serializer conduit.BundledCode disabled by current configuration.",
        "  The current configuration requires the *function* to be serialized with one of the allowed Code classes:",
        "",
        "      Allowed serializers: conduit.SourceCode, conduit.JSONData",
      ].join("\n"),
    });
    expect(exact.check(task("conduit.SourceCode", "conduit.StructuredData"))?.message).toContain(
      "Data serializer conduit.StructuredData disabled by current configuration.\n  The current configuration requires the *arguments* to be serialized with one of the allowed Data classes:",
    );
  });

  it("expands conduit.*Code and conduit.*Data to Conduit's strategies of that kind only", () => {
    const wild = allowlist(["conduit.*Code", "conduit.*Data"])!;
    for (const code of ["conduit.SourceCode", "conduit.BundledCode"]) {
      for (const data of ["conduit.JSONData", "conduit.StructuredData"]) {
        expect(wild.check(task(code, data))).toBeUndefined();
      }
    }
    expect(wild.check(task("evil.PickleCode", "conduit.JSONData"))?.code).toBe("DESERIALIZATION_FAILED");
    expect(wild.check(task("conduit.DillCode", "conduit.JSONData"))?.code).toBe("DESERIALIZATION_FAILED");
    // A data strategy cannot stand in for the function, nor a code one for the arguments.
    expect(wild.check(task("conduit.JSONData", "conduit.JSONData"))?.message).toContain(
      "Code serializer conduit.JSONData disabled",
    );
    expect(wild.check(task("conduit.SourceCode", "conduit.SourceCode"))?.message).toContain(
      "Data serializer conduit.SourceCode disabled",
    );
    const mixed = allowlist(["conduit.*Code", "conduit.StructuredData"])!;
    expect(mixed.check(task("conduit.BundledCode", "conduit.StructuredData"))).toBeUndefined();
    expect(mixed.check(task("conduit.BundledCode", "conduit.JSONData"))?.code).toBe("DESERIALIZATION_FAILED");
  });

  it("is checked with the engine's options, for every engine type, with the same words", () => {
    for (const type of ["ThreadPoolEngine", "ProcessPoolEngine", "HighThroughputEngine"]) {
      expect(() => createEngine({ type, allowed_serializers: ["conduit.SourceCode"] })).toThrow(
        'Deserialization allowlists must contain at least one code and one data deserializer/wildcard (got: ["conduit.SourceCode"])',
      );
      expect(() => createEngine({ type, allowed_serializers: ["globus_compute_sdk.serialize.DillCode"] })).toThrow(
        /write its Conduit equivalent conduit.BundledCode instead/,
      );
      expect(() => createEngine({ type, allowed_serializers: ["conduit.*Code", "conduit.*Data"] })).not.toThrow();
    }
  });
});
