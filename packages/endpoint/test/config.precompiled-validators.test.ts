/**
 * The validators generated at build time (scripts/gen-validators.mjs) agree
 * with Ajv compiling the same schemas, are as fresh as the schema they come
 * from, and spare validateUserConfig loading Ajv for the default schema.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { OUTPUT, validatorsModule } from "../scripts/gen-validators.mjs";
import { DEFAULT_SCHEMA } from "../src/config/defaults.js";
import { validateUserConfig } from "../src/config/user-config-schema.js";
import { ConfigError } from "../src/errors.js";

interface Generated {
  meta2020: ((data: unknown) => boolean) & { errors?: unknown[] | null };
  defaultSchema: ((data: unknown) => boolean) & { errors?: unknown[] | null };
  defaultSchemaSource: string;
}
const generated = createRequire(import.meta.url)(OUTPUT) as Generated;

function ajv(): Ajv2020 {
  const a = new Ajv2020({ allErrors: true, strict: false, logger: false });
  addFormats.default(a);
  return a;
}

describe("generated validators", () => {
  it("are what the generator makes from the current schema (npm run build regenerates them)", () => {
    expect(readFileSync(OUTPUT, "utf8")).toBe(validatorsModule());
    expect(JSON.parse(generated.defaultSchemaSource)).toEqual(JSON.parse(DEFAULT_SCHEMA));
  });

  it("check a config against the default schema as Ajv does, valid and invalid", () => {
    const compiled = ajv().compile(JSON.parse(DEFAULT_SCHEMA));
    const config = fc.dictionary(
      fc.constantFrom("endpoint_setup", "worker_init", "other", "nodes"),
      fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 2 })),
    );
    let valid = 0;
    let invalid = 0;
    fc.assert(
      fc.property(config, (c) => {
        const ok = generated.defaultSchema(c);
        expect(ok).toBe(compiled(c));
        expect(generated.defaultSchema.errors ?? null).toEqual(compiled.errors ?? null);
        if (ok) valid++;
        else invalid++;
      }),
      { numRuns: 300 },
    );
    expect(valid).toBeGreaterThan(0);
    expect(invalid).toBeGreaterThan(0);
  });

  it.each([
    [{ type: "object", properties: { n: { type: "integer", minimum: 1 } }, required: ["n"] }, true],
    [{ $defs: { a: { items: { $ref: "#/$defs/a" } } }, anyOf: [{ $ref: "#/$defs/a" }] }, true],
    [true, true],
    [{ type: 5 }, false],
    [{ properties: { a: { type: "nope" } } }, false],
    [{ properties: { a: { items: { minimum: "x" } } } }, false],
    [{ required: ["a", "a"] }, false],
    [{ minLength: -1 }, false],
  ])("check a schema against the 2020-12 meta-schema as Ajv does: %j", (schema, valid) => {
    const a = ajv();
    expect(a.validateSchema(schema)).toBe(valid);
    expect(generated.meta2020(schema)).toBe(valid);
    expect(generated.meta2020.errors ?? null).toEqual(a.errors ?? null);
  });
});

describe("validateUserConfig with the generated validators", () => {
  it("refuses a config the default schema refuses, naming the field", () => {
    expect(() => validateUserConfig(DEFAULT_SCHEMA, { worker_init: 3 })).toThrow(
      /^User endpoint configuration is invalid: \/worker_init must be string/,
    );
    expect(() => validateUserConfig(DEFAULT_SCHEMA, { worker_init: "x", extra: 1 })).not.toThrow();
  });

  it("refuses a schema the meta-schema refuses, with Ajv's words", () => {
    const err = (() => {
      try {
        validateUserConfig('{"properties": {"a": {"type": "nope"}}}', {});
      } catch (e) {
        return e as ConfigError;
      }
      throw new Error("no error");
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toMatch(
      /^user_config_schema\.json is not a valid JSON schema \(schema is invalid: data\/properties\/a\/type must be equal to one of the allowed values, .+\); ask/,
    );
  });

  it("loads no Ajv for the default schema, and does for another one", () => {
    const probe = (schema: string) =>
      spawnSync(
        process.execPath,
        [
          "--input-type=module",
          "-e",
          `import { createRequire } from "node:module";
           const { validateUserConfig } = await import(${JSON.stringify(new URL("../dist/config/user-config-schema.js", import.meta.url).href)});
           validateUserConfig(${JSON.stringify(schema)}, { worker_init: "x" });
           const cache = createRequire(import.meta.url).cache;
           console.log(Object.keys(cache).some((f) => /[\\\\/]ajv[\\\\/]dist[\\\\/]core\\.js$/.test(f)));`,
        ],
        { encoding: "utf8" },
      );
    const withDefault = probe(DEFAULT_SCHEMA);
    expect(withDefault.stderr).toBe("");
    expect(withDefault.stdout.trim()).toBe("false");
    expect(probe('{"type": "object", "required": ["worker_init"]}').stdout.trim()).toBe("true");
  });
});
