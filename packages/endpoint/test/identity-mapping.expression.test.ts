/**
 * expression_identity_mapping#1.0.0 as Globus defines it: full-string
 * matching of the reduced ERE, groups into `{N}`, ignore_case, literal, the
 * refused expressions with Globus's messages, interpolation errors; and the
 * configuration list: first mapper with a result wins, a failing mapper is
 * skipped with Globus's warning, a missing DATA_TYPE is refused, an unknown
 * one is skipped with a warning.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { compileMatch, ExpressionIdentityMapping, interpolate } from "../src/identity-mapping/expression-mapping.js";
import { IdentityMapper } from "../src/identity-mapping/identity-mapper.js";
import { loadMappers } from "../src/identity-mapping/load-mappers.js";
import { IdentityMappingError, InvalidMappingError, toIdentityRecord } from "../src/identity-mapping/mapping-types.js";
import type { Logger } from "../src/logging.js";

const ALICE = {
  id: "9cf5a1d2-41c4-4925-b0bb-f5e0a16c98ab",
  username: "alice@example.edu",
  name: "Alice Liddell",
  email: "alice@wonder.example.org",
  organization: "Example University",
  identity_provider: "1f8ba017-6224-43ad-a42f-03059574ba38",
};

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function memoryLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    debug: (m) => lines.push(`DEBUG ${m}`),
    info: (m) => lines.push(`INFO ${m}`),
    warn: (m) => lines.push(`WARNING ${m}`),
    error: (m) => lines.push(`ERROR ${m}`),
  };
}

function writeConfig(config: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), "conduit-idmap-"));
  dirs.push(dir);
  const path = join(dir, "idmap.json");
  writeFileSync(path, JSON.stringify(config));
  return path;
}

async function mapWith(rules: ConstructorParameters<typeof ExpressionIdentityMapping>[1], identity = ALICE) {
  const mapper = new ExpressionIdentityMapping("expression_identity_mapping#1.0.0", rules);
  return mapper.mapIdentities([toIdentityRecord(identity)]);
}

describe("expression match language", () => {
  it("matches the whole source only", () => {
    const re = compileMatch("(.*)@example.edu");
    expect(re.exec("alice@example.edu")?.[1]).toBe("alice");
    expect(re.test("alice@example.edu.evil.org")).toBe(false);
    expect(re.test("x-alice@example.edux")).toBe(false);
    expect(compileMatch("alice|bob").test("alicefoo")).toBe(false);
    expect(compileMatch("alice|bob").test("bob")).toBe(true);
  });

  it("supports . ? * | and groups, and treats ^ $ + { } [ ] literally", () => {
    expect(compileMatch("a.c").test("abc")).toBe(true);
    expect(compileMatch("colou?r").test("color")).toBe(true);
    expect(compileMatch("colou?r").test("colour")).toBe(true);
    expect(compileMatch("ab*").test("abbbb")).toBe(true);
    expect(compileMatch("(alice|bob)@x").exec("bob@x")?.[1]).toBe("bob");
    expect(compileMatch("a+b").test("a+b")).toBe(true);
    expect(compileMatch("a+b").test("aab")).toBe(false);
    expect(compileMatch("^a$").test("^a$")).toBe(true);
    expect(compileMatch("x{2}").test("x{2}")).toBe(true);
    expect(compileMatch("[ab]").test("[ab]")).toBe(true);
    expect(compileMatch("[ab]").test("a")).toBe(false);
  });

  it("honours escapes of the special characters", () => {
    expect(compileMatch("a\\.b").test("a.b")).toBe(true);
    expect(compileMatch("a\\.b").test("axb")).toBe(false);
    expect(compileMatch("a\\*").test("a*")).toBe(true);
    expect(compileMatch("a\\|b").test("a|b")).toBe(true);
    expect(compileMatch("\\(x\\)").test("(x)")).toBe(true);
    expect(compileMatch("a\\\\").test("a\\")).toBe(true);
    // As in Globus: the escape check reads the second backslash of a\\b (two backslashes) as escaping "b".
    expect(() => compileMatch("a\\\\b")).toThrow("Invalid \\ expression: \\b");
  });

  it("ignore_case and literal", () => {
    expect(compileMatch("ALICE@Example.EDU").test("alice@example.edu")).toBe(false);
    expect(compileMatch("ALICE@Example.EDU", true).test("alice@example.edu")).toBe(true);
    const literal = compileMatch("a.b*(c)|d", false, true);
    expect(literal.test("a.b*(c)|d")).toBe(true);
    expect(literal.test("axbbc")).toBe(false);
    expect(compileMatch("A.B", true, true).test("a.b")).toBe(true);
    // Literal mode does not refuse what the expression language refuses.
    expect(compileMatch("*x\\q", false, true).test("*x\\q")).toBe(true);
  });

  it("refuses bad escapes, lazy quantifiers and leading wildcards with Globus's messages", () => {
    const refused = (match: string) => {
      try {
        compileMatch(match);
      } catch (err) {
        expect(err).toBeInstanceOf(InvalidMappingError);
        return (err as Error).message;
      }
      throw new Error(`${match} was accepted`);
    };
    expect(refused("a\\d")).toBe("a\\d - Invalid \\ expression: \\d");
    expect(refused("a*?")).toBe("a*? - Invalid ? expression: *?");
    expect(refused("a??")).toBe("a?? - Invalid ? expression: ??");
    expect(refused("*a")).toBe("*a - Invalid leading wildcard expression: *");
    expect(refused("?a")).toBe("?a - Invalid leading wildcard expression: ?");
    expect(refused("(a")).toMatch(/^Invalid mapping \(a: /);
  });
});

describe("interpolation", () => {
  const record = toIdentityRecord(ALICE);

  it("fills {field} from the identity and {N} from the groups; sub is the id", () => {
    expect(interpolate("{username}/{sub}", record)).toBe(`alice@example.edu/${ALICE.id}`);
    expect(interpolate("{1}-{0}-{0}", record, ["a", "b"])).toBe("b-a-a");
  });

  it("fails with Globus's messages", () => {
    expect(() => interpolate("{nickname}", record)).toThrow(
      new IdentityMappingError("Missing identity property nickname"),
    );
    expect(() => interpolate("{1}", record, ["a"])).toThrow(new IdentityMappingError("Invalid reference to 1"));
  });

  it("maps with the first matching rule per identity, rule by rule", async () => {
    const result = await mapWith([
      { source: "{email}", match: "(.*)@nowhere", output: "{0}" },
      { source: "{username}", match: "(.*)@EXAMPLE.edu", output: "{0}", ignore_case: true },
      { source: "{username}", match: "(.*)@example.edu", output: "second-{0}" },
    ]);
    expect(result).toEqual([{}, { [ALICE.id]: ["alice"] }, { [ALICE.id]: ["second-alice"] }]);
  });

  it("an output referring to a group of a literal rule fails", async () => {
    await expect(
      mapWith([{ source: "{username}", match: "alice@example.edu", output: "{0}", literal: true }]),
    ).rejects.toThrow("Invalid reference to 0");
  });

  it("skips identities whose status is neither used nor private", async () => {
    const result = await mapWith([{ source: "{username}", match: "(.*)@example.edu", output: "{0}" }], {
      ...ALICE,
      status: "unused",
    } as typeof ALICE);
    expect(result).toEqual([{}]);
  });
});

describe("mapping configuration list", () => {
  it("the first mapper with a result wins, with its index and rule", async () => {
    const log = memoryLog();
    const path = writeConfig([
      { DATA_TYPE: "expression_identity_mapping#1.0.0", mappings: [{ source: "{email}", match: "x", output: "x" }] },
      { DATA_TYPE: "no_such_mapping#1.0.0" },
      {
        DATA_TYPE: "expression_identity_mapping#1.0.0",
        mappings: [
          { source: "{username}", match: "bob@.*", output: "bob" },
          { source: "{username}", match: "(.*)@example.edu", output: "{0}" },
        ],
      },
      { DATA_TYPE: "expression_identity_mapping#1.0.0", mappings: [{ source: "{id}", match: ".*", output: "x" }] },
    ]);
    const mapper = IdentityMapper.load(path, { endpointId: "ep", log });
    expect(log.lines).toEqual(["WARNING No identity mapper found for: no_such_mapping#1.0.0 (index: 1)"]);
    expect(await mapper.map(ALICE)).toEqual({
      username: "alice",
      mapperIndex: 2,
      ruleIndex: 1,
      dataType: "expression_identity_mapping#1.0.0",
      identityId: ALICE.id,
    });
    expect(await mapper.map({ id: "f0000000-0000-4000-8000-000000000000", username: "carol@other.org" })).toMatchObject(
      { username: "x", mapperIndex: 3, ruleIndex: 0 },
    );
  });

  it("a failing mapper is logged as Globus does and the next one is tried", async () => {
    const log = memoryLog();
    const path = writeConfig([
      { DATA_TYPE: "expression_identity_mapping#1.0.0", mappings: [{ source: "{nickname}", match: "x", output: "x" }] },
      {
        DATA_TYPE: "expression_identity_mapping#1.0.0",
        mappings: [{ source: "{id}", match: ".*", output: "fallback" }],
      },
    ]);
    const mapper = IdentityMapper.load(path, { endpointId: "ep", log });
    expect(await mapper.map(ALICE)).toMatchObject({ username: "fallback", mapperIndex: 1 });
    expect(log.lines).toEqual([
      "WARNING Identity mapper 1 [of 2] (ExpressionIdentityMapping) failed -- (IdentityMappingError) Missing identity property nickname",
    ]);
  });

  it("returns null when nothing matches", async () => {
    const path = writeConfig([
      {
        DATA_TYPE: "expression_identity_mapping#1.0.0",
        mappings: [{ source: "{username}", match: "(.*)@example.com", output: "{0}" }],
      },
    ]);
    expect(await IdentityMapper.load(path, { endpointId: "ep", log: memoryLog() }).map(ALICE)).toBeNull();
  });

  it("refuses a missing DATA_TYPE, a non-object item, a non-list file and malformed rules", () => {
    const load = (config: unknown) => () => loadMappers(config, { endpointId: "ep", log: memoryLog() });
    expect(load([{ DATA_TYPE: "expression_identity_mapping#1.0.0", mappings: [] }, { mappings: [] }])).toThrow(
      new InvalidMappingError("Invalid map config (index: 1)"),
    );
    expect(load(["x"])).toThrow("Invalid mapping or map config (index: 0)");
    expect(load({ DATA_TYPE: "expression_identity_mapping#1.0.0" })).toThrow(
      /must be a JSON list of mapper configurations/,
    );
    expect(
      load([{ DATA_TYPE: "expression_identity_mapping#1.0.0", mappings: [{ source: "{id}", match: "x" }] }]),
    ).toThrow("Invalid map config (index: 0): mappings[0].output must be a string.");
    expect(
      load([
        { DATA_TYPE: "expression_identity_mapping#1.0.0", mappings: [{ source: "{id}", match: "*x", output: "" }] },
      ]),
    ).toThrow("*x - Invalid leading wildcard expression: *");
    expect(load([{ DATA_TYPE: "external_identity_mapping#1.0.0", command: [] }])).toThrow(
      /"command" must be a non-empty list/,
    );
  });

  it("the shipped example maps name@example.com to name", async () => {
    const { EXAMPLE_IDENTITY_MAPPING_CONFIG } = await import("../src/config/example-identity-mapping.js");
    const path = writeConfig(JSON.parse(EXAMPLE_IDENTITY_MAPPING_CONFIG));
    const mapper = IdentityMapper.load(path, { endpointId: "ep", log: memoryLog() });
    expect(await mapper.map({ ...ALICE, username: "dana@example.com" })).toMatchObject({ username: "dana" });
    expect(await mapper.map(ALICE)).toBeNull();
  });
});
