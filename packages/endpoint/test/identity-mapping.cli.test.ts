/**
 * The admin's side, through the built CLI: `configure --multi-user` writes the
 * example mapping file (0600) and points config.yaml at it; `idmap test`
 * reports the mapper, rule and local user, or why the identity would be refused.
 */
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { cleanupProcesses, cliEnv, runCli, tempUserDir } from "./cli.helpers.js";

afterAll(cleanupProcesses);

const ID = "9cf5a1d2-41c4-4925-b0bb-f5e0a16c98ab";

async function multiUserEndpoint(): Promise<{ userDir: string; env: NodeJS.ProcessEnv; mappingPath: string }> {
  const userDir = tempUserDir();
  const env = cliEnv(userDir);
  const made = await runCli(["configure", "shared", "--multi-user"], env);
  expect(made.stderr).toBe("");
  expect(made.code).toBe(0);
  return { userDir, env, mappingPath: join(userDir, "shared", "example_identity_mapping_config.json") };
}

function identityFile(userDir: string, identity: object): string {
  const path = join(userDir, `identity-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, JSON.stringify(identity));
  return path;
}

describe("configure --multi-user", () => {
  it("writes example_identity_mapping_config.json (0600) and sets identity_mapping_config_path", async () => {
    const { userDir, mappingPath } = await multiUserEndpoint();
    expect(statSync(mappingPath).mode & 0o777).toBe(0o600);
    const example = JSON.parse(readFileSync(mappingPath, "utf8"));
    expect(example).toEqual([
      expect.objectContaining({
        DATA_TYPE: "expression_identity_mapping#1.0.0",
        mappings: [{ source: "{username}", match: "(.*)@example.com", output: "{0}" }],
      }),
    ]);
    expect(JSON.stringify(example)).not.toMatch(/globus/i);
    const config = parse(readFileSync(join(userDir, "shared", "config.yaml"), "utf8"));
    expect(config).toMatchObject({ multi_user: true, identity_mapping_config_path: mappingPath });
  });

  it("a single-user endpoint gets neither", async () => {
    const userDir = tempUserDir();
    expect((await runCli(["configure", "solo"], cliEnv(userDir))).code).toBe(0);
    expect(() => statSync(join(userDir, "solo", "example_identity_mapping_config.json"))).toThrow();
    expect(readFileSync(join(userDir, "solo", "config.yaml"), "utf8")).not.toContain("identity_mapping_config_path");
  });
});

describe("conduit-endpoint idmap test", () => {
  it("names the mapper, rule and existing local user (exit 0)", async () => {
    const { userDir, env, mappingPath } = await multiUserEndpoint();
    writeFileSync(
      mappingPath,
      JSON.stringify([
        {
          DATA_TYPE: "expression_identity_mapping#1.0.0",
          mappings: [{ source: "{email}", match: "nobody", output: "x" }],
        },
        {
          DATA_TYPE: "expression_identity_mapping#1.0.0",
          mappings: [
            { source: "{username}", match: "bob@.*", output: "bob" },
            { source: "{username}", match: "admin@example.edu", output: "root" },
          ],
        },
      ]),
    );
    const identity = identityFile(userDir, { id: ID, username: "admin@example.edu", email: "a@example.edu" });
    const { code, stdout, stderr } = await runCli(["idmap", "test", "shared", identity], env);
    expect(stderr).toBe("");
    expect(stdout).toContain(`Identity: admin@example.edu (${ID})`);
    expect(stdout).toContain(`Identity mapping configuration: ${mappingPath} (2 mapper(s))`);
    expect(stdout).toContain("Mapped by mapper 1 (expression_identity_mapping#1.0.0), rule 1 to local user: root");
    expect(stdout).toMatch(/Local user root exists: uid 0, gid 0, groups 0\b/);
    expect(code).toBe(0);
  });

  it("says when nothing matched (exit 1)", async () => {
    const { userDir, env } = await multiUserEndpoint();
    const identity = identityFile(userDir, { id: ID, username: "alice@example.edu" });
    const { code, stdout } = await runCli(["idmap", "test", "shared", identity], env);
    expect(stdout).toContain("No mapper matched this identity: Identity failed to map to a local user name.");
    expect(code).toBe(1);
  });

  it("says when the mapped user does not exist locally (exit 1)", async () => {
    const { userDir, env } = await multiUserEndpoint();
    const identity = identityFile(userDir, { sub: ID, username: "conduit-nobody-4711@example.com" });
    const { code, stdout } = await runCli(["idmap", "test", "shared", identity], env);
    expect(stdout).toContain(
      "Mapped by mapper 0 (expression_identity_mapping#1.0.0), rule 0 to local user: conduit-nobody-4711",
    );
    expect(stdout).toContain(
      "Local user conduit-nobody-4711 does not exist on this machine: Identity mapped to a local user name, but local user does not exist.",
    );
    expect(code).toBe(1);
  });

  it("reports a failing mapper on stderr and a broken mapping file in one sentence", async () => {
    const { userDir, env, mappingPath } = await multiUserEndpoint();
    writeFileSync(
      mappingPath,
      JSON.stringify([
        {
          DATA_TYPE: "expression_identity_mapping#1.0.0",
          mappings: [{ source: "{nickname}", match: "x", output: "x" }],
        },
      ]),
    );
    const identity = identityFile(userDir, { id: ID, username: "alice@example.edu" });
    const failed = await runCli(["idmap", "test", "shared", identity], env);
    expect(failed.stderr).toContain(
      "Warning: Identity mapper 1 [of 1] (ExpressionIdentityMapping) failed -- (IdentityMappingError) Missing identity property nickname",
    );
    expect(failed.code).toBe(1);

    writeFileSync(mappingPath, JSON.stringify([{ mappings: [] }]));
    const broken = await runCli(["idmap", "test", "shared", identity], env);
    expect(broken.stderr.trim()).toBe(
      `Error: (InvalidMappingError) Invalid map config (index: 0) -- Unable to read identity mapping configuration from: ${mappingPath}`,
    );
    expect(broken.code).toBe(1);
  });

  it("explains an endpoint without identity_mapping_config_path and a bad identity file", async () => {
    const userDir = tempUserDir();
    const env = cliEnv(userDir);
    expect((await runCli(["configure", "solo"], env)).code).toBe(0);
    const identity = identityFile(userDir, { id: ID, username: "alice@example.edu" });
    const none = await runCli(["idmap", "test", "solo", identity], env);
    expect(none.stderr.trim()).toMatch(
      /^Error: Endpoint solo has no identity_mapping_config_path in .*config\.yaml; set it to an identity mapping file/,
    );
    expect(none.code).toBe(1);

    await runCli(["configure", "shared", "--multi-user"], env);
    const bad = await runCli(["idmap", "test", "shared", identityFile(userDir, { username: "x" })], env);
    expect(bad.stderr.trim()).toMatch(/holds no identity with an "id" \(or "sub"\); give a JSON object such as/);
    expect(bad.code).toBe(1);
  });
});
