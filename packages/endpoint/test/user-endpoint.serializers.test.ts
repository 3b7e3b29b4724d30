import { describe, expect, it } from "vitest";
import { SerializerAllowlist } from "../src/user-endpoint/serializer-allowlist.js";

const task = (code: string, data: string) => ({
  function: { strategy: code, data: "() => 1" },
  args: { strategy: data, data: "{}" },
});

describe("engine.allowed_serializers", () => {
  it("allows everything when unset", () => {
    expect(SerializerAllowlist.fromEngineConfig({ type: "ThreadPoolEngine" })).toBeUndefined();
  });

  it("refuses a list without one code and one data entry, naming the fix", () => {
    expect(() => SerializerAllowlist.fromEngineConfig({ allowed_serializers: ["conduit.SourceCode"] })).toThrow(
      /at least one code and one data serializer or wildcard \(got: \["conduit.SourceCode"\]\); add e.g. conduit.\*Code and conduit.\*Data/,
    );
    expect(() => SerializerAllowlist.fromEngineConfig({ allowed_serializers: "conduit.*Code" })).toThrow(
      /must be a list/,
    );
  });

  it("checks the function's and the arguments' strategies, with the two wildcards", () => {
    const exact = SerializerAllowlist.fromEngineConfig({
      allowed_serializers: ["conduit.SourceCode", "conduit.JSONData"],
    })!;
    expect(exact.check(task("conduit.SourceCode", "conduit.JSONData"))).toBeUndefined();
    expect(exact.check(task("conduit.BundleCode", "conduit.JSONData"))).toMatchObject({
      code: "DESERIALIZATION_FAILED",
      message: expect.stringMatching(
        /code serializer conduit.BundleCode is disabled .* serialize the function with one of the allowed serializers: conduit.SourceCode, conduit.JSONData/,
      ),
    });
    expect(exact.check(task("conduit.SourceCode", "conduit.StructuredCloneData"))?.message).toMatch(
      /serialize the arguments/,
    );

    const wild = SerializerAllowlist.fromEngineConfig({ allowed_serializers: ["conduit.*Code", "conduit.*Data"] })!;
    expect(wild.check(task("conduit.BundleCode", "conduit.StructuredCloneData"))).toBeUndefined();
    expect(wild.check(task("evil.PickleCode", "conduit.JSONData"))?.code).toBe("DESERIALIZATION_FAILED");
    // A data strategy cannot stand in for the function.
    expect(wild.check(task("conduit.JSONData", "conduit.JSONData"))?.code).toBe("DESERIALIZATION_FAILED");
  });
});
