/**
 * `configure` and `list` with the service down: the four default files, the
 * seed's message, the names it refuses, never overwriting an endpoint; an
 * endpoint that was never started lists as Initialized.
 */
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  DEFAULT_CONFIG_YAML,
  DEFAULT_SCHEMA,
  DEFAULT_TEMPLATE,
  DEFAULT_USER_ENVIRONMENT,
} from "../dist/config/defaults.js";
import { cleanupProcesses, cliEnv, listStates, runCli, tempUserDir } from "./cli.helpers.js";

afterAll(cleanupProcesses);

describe("conduit-endpoint configure", () => {
  it("writes the four default files into a 0700 folder and prints the seed's message", async () => {
    const userDir = tempUserDir();
    const { code, stdout, stderr } = await runCli(["configure", "my_endpoint"], cliEnv(userDir));
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const dir = join(userDir, "my_endpoint");
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(readFileSync(join(dir, "config.yaml"), "utf8")).toBe(DEFAULT_CONFIG_YAML);
    expect(readFileSync(join(dir, "user_config_template.yaml.j2"), "utf8")).toBe(DEFAULT_TEMPLATE);
    expect(readFileSync(join(dir, "user_config_schema.json"), "utf8")).toBe(DEFAULT_SCHEMA);
    expect(readFileSync(join(dir, "user_environment.yaml"), "utf8")).toBe(DEFAULT_USER_ENVIRONMENT);
    // The seed's first line says "multi-user profile" for a plain configure too.
    expect(stdout).toBe(`Created multi-user profile for endpoint named <my_endpoint>

    Configuration file: ${join(dir, "config.yaml")}

    User endpoint configuration template: ${join(dir, "user_config_template.yaml.j2")}
    User endpoint configuration schema: ${join(dir, "user_config_schema.json")}
    User endpoint environment variables: ${join(dir, "user_environment.yaml")}

Use the \`start\` subcommand to run it:

    conduit-endpoint start my_endpoint
`);
    expect(readdirSync(dir).sort()).toEqual([
      "config.yaml",
      "user_config_schema.json",
      "user_config_template.yaml.j2",
      "user_environment.yaml",
    ]);
  });

  it("writes --display-name and --multi-user into config.yaml, and start checks root and the mapping key first", async () => {
    const userDir = tempUserDir();
    const env = cliEnv(userDir);
    const made = await runCli(["configure", "shared", "--display-name", 'Lab "A" cluster', "--multi-user"], env);
    expect(made.code).toBe(0);
    // Every file it wrote is named, the identity mapping beside the config the MEP reads.
    const dir = join(userDir, "shared");
    expect(made.stdout).toBe(`Created multi-user profile for endpoint named <shared>

    Configuration file: ${join(dir, "config.yaml")}
    Identity mapping configuration: ${join(dir, "example_identity_mapping_config.json")}

    User endpoint configuration template: ${join(dir, "user_config_template.yaml.j2")}
    User endpoint configuration schema: ${join(dir, "user_config_schema.json")}
    User endpoint environment variables: ${join(dir, "user_environment.yaml")}

Use the \`start\` subcommand to run it (as root: it maps users to local accounts):

    conduit-endpoint start shared
`);
    expect(readdirSync(dir)).toHaveLength(5);
    const config = readFileSync(join(userDir, "shared", "config.yaml"), "utf8");
    expect(config).toContain('display_name: "Lab \\"A\\" cluster"');
    expect(config).toContain("multi_user: true");
    expect(config).toMatch(/^identity_mapping_config_path: ".*example_identity_mapping_config\.json"$/m);
    writeFileSync(join(userDir, "shared", "config.yaml"), config.replace(/^identity_mapping_config_path:.*$/m, ""));
    const started = await runCli(["start", "shared"], env);
    // EX_CONFIG for the missing key (as root), EX_NOPERM for a non-root start.
    expect(started.code).toBe(process.getuid?.() === 0 ? 78 : 77);
    expect(started.stderr.trim()).toMatch(
      process.getuid?.() === 0
        ? /^Error: Multi-user endpoint shared has no identity_mapping_config_path in .*config\.yaml; set it to a mapping file such as .*example_identity_mapping_config\.json\.$/
        : /^Error: Endpoint shared is configured as multi-user .* multi-user endpoints must be started as root .*; start it as root, or remove multi_user to run it single-user\.$/,
    );
  });

  it("refuses reserved and malformed names, each with one sentence naming the fix", async () => {
    const env = cliEnv(tempUserDir());
    const cases: Array<[string, RegExp]> = [
      ["service", /"service" is the local service's data folder, not an endpoint name; choose another name\./],
      ["uep.abc", /starting with "uep\." are reserved for user endpoint processes; choose another name\./],
      ["a/b", /may contain only letters, digits.*choose a name such as my_endpoint\./],
      ["has space", /may contain only letters, digits.*\(no "\/", spaces or other characters\)/],
      ["semi;colon", /may contain only letters, digits/],
      ["..", /may not start with "\."/],
    ];
    for (const [name, message] of cases) {
      const { code, stdout, stderr } = await runCli(["configure", name], env);
      expect(code, name).toBe(1);
      expect(stdout, name).toBe("");
      expect(stderr, name).toMatch(message);
      expect(stderr.trim().split("\n"), name).toHaveLength(1);
    }
  });

  it("never overwrites an existing endpoint", async () => {
    const userDir = tempUserDir();
    const env = cliEnv(userDir);
    expect((await runCli(["configure", "mine"], env)).code).toBe(0);
    const config = join(userDir, "mine", "config.yaml");
    writeFileSync(config, "display_name: edited by the admin\n");
    const again = await runCli(["configure", "mine"], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/Endpoint mine already exists .*; start it with: conduit-endpoint start mine/);
    expect(readFileSync(config, "utf8")).toBe("display_name: edited by the admin\n");
  });

  it("lists configured endpoints as Initialized, sorted, skipping service/ and uep.* folders", async () => {
    const userDir = tempUserDir();
    const env = cliEnv(userDir);
    for (const name of ["zeta", "alpha"]) expect((await runCli(["configure", name], env)).code).toBe(0);
    // Folders that hold a config.yaml but are not endpoints.
    for (const dir of ["service", "uep.x.y"]) {
      mkdirSync(join(userDir, dir));
      writeFileSync(join(userDir, dir, "config.yaml"), "{}\n");
    }
    const { stdout } = await runCli(["list"], env);
    expect(stdout.indexOf("alpha")).toBeLessThan(stdout.indexOf("zeta"));
    const rows = await listStates(env);
    expect([...rows.keys()]).toEqual(["alpha", "zeta"]);
    expect(rows.get("alpha")).toEqual({ id: "", status: "Initialized" });
  });

  it("says how to start when there is no endpoint, and errors clearly on an unknown one", async () => {
    const env = cliEnv(tempUserDir());
    const empty = await runCli(["list"], env);
    expect(empty.code).toBe(0);
    expect(empty.stdout).toContain("No endpoints configured!");
    for (const cmd of ["start", "stop", "delete"]) {
      const r = await runCli([cmd, "ghost"], env);
      expect(r.code, cmd).toBe(1);
      expect(r.stderr.trim(), cmd).toMatch(
        /^Error: There is no endpoint named ghost in .*; create it with: conduit-endpoint configure ghost$/,
      );
    }
  });

  it("prints its version and help", async () => {
    const env = cliEnv(tempUserDir());
    const version = await runCli(["--version"], env);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    const help = await runCli(["--help"], env);
    expect(help.code).toBe(0);
    for (const cmd of ["configure", "start", "stop", "list", "delete"]) expect(help.stdout).toContain(cmd);
    expect(help.stdout).not.toContain("_start-user-endpoint");
  });
});
