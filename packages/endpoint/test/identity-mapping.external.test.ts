/**
 * external_identity_mapping#1.0.0 with real programs: the argv Globus
 * passes (`-c <POSIX connector> -s <endpoint id> -a`), the input document on
 * stdin, a mapped result; and each failure with Globus's message — non-zero
 * exit, unparsable output, an id that was not asked about, the 5 s timeout
 * (shortened here), a program that does not exist.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ExternalIdentityMapping } from "../src/identity-mapping/external-mapping.js";
import { IdentityMapper } from "../src/identity-mapping/identity-mapper.js";
import { POSIX_CONNECTOR_ID } from "../src/identity-mapping/load-mappers.js";
import { IdentityMappingError, InvalidMappingError, toIdentityRecord } from "../src/identity-mapping/mapping-types.js";
import type { Logger } from "../src/logging.js";

const ALICE = { id: "9cf5a1d2-41c4-4925-b0bb-f5e0a16c98ab", username: "alice@example.edu" };
const ENDPOINT_ID = "3f2b4c4e-1a34-4e52-9d0f-6f5a3a2b1c0d";

const dir = mkdtempSync(join(tmpdir(), "conduit-idmap-ext-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Writes an executable node script whose body sees `input` (parsed stdin) and `argv`. */
function script(name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(
    path,
    `#!${process.execPath}\nconst argv = process.argv.slice(2);\nlet text = "";\nprocess.stdin.on("data", (d) => { text += d; });\nprocess.stdin.on("end", () => {\n  const input = JSON.parse(text);\n${body}\n});\n`,
  );
  chmodSync(path, 0o755);
  return path;
}

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

function mapping(command: string[], timeoutMs?: number): ExternalIdentityMapping {
  return new ExternalIdentityMapping("external_identity_mapping#1.0.0", command, {
    connector: POSIX_CONNECTOR_ID,
    storageGateway: ENDPOINT_ID,
    timeoutMs,
  });
}

describe("external identity mapping", () => {
  it("passes Globus's arguments and input document, and maps from the program's result", async () => {
    const seen = join(dir, "seen.json");
    const exe = script(
      "ok.js",
      `require("node:fs").writeFileSync(${JSON.stringify(seen)}, JSON.stringify({ argv, input }));
  const id = input.identities[0].id;
  process.stdout.write(JSON.stringify({ DATA_TYPE: "identity_mapping_output#1.0.0", result: [{ id, output: input.identities[0].username.split("@")[0] }] }));`,
    );
    const configPath = join(dir, "ok.json");
    writeFileSync(
      configPath,
      JSON.stringify([{ DATA_TYPE: "external_identity_mapping#1.0.0", command: [exe, "--site", 7] }]),
    );
    const mapper = IdentityMapper.load(configPath, { endpointId: ENDPOINT_ID, log: silent });
    expect(await mapper.map(ALICE)).toEqual({
      username: "alice",
      mapperIndex: 0,
      dataType: "external_identity_mapping#1.0.0",
      identityId: ALICE.id,
    });
    const { argv, input } = JSON.parse(readFileSync(seen, "utf8"));
    expect(argv).toEqual(["--site", "7", "-c", "145812c8-decc-41f1-83cf-bb2a85a2a70b", "-s", ENDPOINT_ID, "-a"]);
    expect(input).toEqual({
      DATA_TYPE: "identity_mapping_input#1.0.0",
      identities: [{ ...ALICE, sub: ALICE.id, status: "used" }],
    });
  });

  it("empty output means no mapping", async () => {
    const exe = script("empty.js", "");
    expect(await mapping([exe]).mapIdentities([toIdentityRecord(ALICE)])).toEqual([]);
  });

  it("a non-zero exit fails with the command, exit code, stdin, stdout and stderr", async () => {
    const exe = script(
      "fail.js",
      `process.stdout.write("partial"); process.stderr.write("no such user"); process.exit(3);`,
    );
    const err = await mapping([exe])
      .mapIdentities([toIdentityRecord(ALICE)])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IdentityMappingError);
    const message = (err as Error).message;
    expect(message).toMatch(
      /^Error mapping identities\n {4}command: .*fail\.js -c 145812c8-decc-41f1-83cf-bb2a85a2a70b -s \S+ -a\n/,
    );
    expect(message).toContain("\n  exit code: 3\n");
    expect(message).toContain('\n      stdin: {"DATA_TYPE":"identity_mapping_input#1.0.0","identities":[');
    expect(message).toContain("\n     stdout: partial\n");
    expect(message).toContain("\n     stderr: no such user");
  });

  it("unparsable or malformed output is an invalid result", async () => {
    const garbage = script("garbage.js", `process.stdout.write("alice");`);
    await expect(mapping([garbage]).mapIdentities([toIdentityRecord(ALICE)])).rejects.toThrow(
      /^The mapping application yielded an invalid result:\n {2}exception: \(SyntaxError\) .*\n {4}command: /,
    );
    const wrongType = script(
      "wrong-type.js",
      `process.stdout.write(JSON.stringify({ DATA_TYPE: "identity_mapping_input#1.0.0", result: [] }));`,
    );
    await expect(mapping([wrongType]).mapIdentities([toIdentityRecord(ALICE)])).rejects.toThrow(
      "exception: (ValidationError) DATA_TYPE must be identity_mapping_output#1.0.0",
    );
  });

  it("a result for an identity that was not asked about is refused", async () => {
    const exe = script(
      "other-id.js",
      `process.stdout.write(JSON.stringify({ DATA_TYPE: "identity_mapping_output#1.0.0", result: [{ id: "00000000-0000-4000-8000-000000000001", output: "root" }] }));`,
    );
    await expect(mapping([exe]).mapIdentities([toIdentityRecord(ALICE)])).rejects.toThrow(
      new InvalidMappingError("Invalid ID in result"),
    );
  });

  it("a program that does not answer in time is killed and the mapping fails", async () => {
    const exe = script("slow.js", "setTimeout(() => {}, 60_000);");
    const err = await mapping([exe], 500)
      .mapIdentities([toIdentityRecord(ALICE)])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IdentityMappingError);
    expect((err as Error).message).toMatch(/^Command '.*slow\.js -c .* -a' timed out after 0\.5 seconds$/);
  });

  it("a failing external mapper is logged and the next mapper decides", async () => {
    const lines: string[] = [];
    const log: Logger = { ...silent, warn: (m) => lines.push(m) };
    const configPath = join(dir, "chain.json");
    writeFileSync(
      configPath,
      JSON.stringify([
        { DATA_TYPE: "external_identity_mapping#1.0.0", command: [join(dir, "does-not-exist")] },
        {
          DATA_TYPE: "expression_identity_mapping#1.0.0",
          mappings: [{ source: "{username}", match: "(.*)@.*", output: "{0}" }],
        },
      ]),
    );
    const mapper = IdentityMapper.load(configPath, { endpointId: ENDPOINT_ID, log });
    expect(await mapper.map(ALICE)).toMatchObject({ username: "alice", mapperIndex: 1, ruleIndex: 0 });
    expect(lines).toEqual([
      expect.stringMatching(
        /^Identity mapper 1 \[of 2\] \(ExternalIdentityMapping\) failed -- \(Error\) spawn .* ENOENT$/,
      ),
    ]);
  });
});
