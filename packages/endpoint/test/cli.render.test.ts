/**
 * `conduit-endpoint render`, the admin's dry run, run as the built CLI: the
 * YAML a UEP would get, the schema check, config.yaml's template and schema
 * paths, `--user` filling mapped_identity.local, and one error line prefixed by
 * the failing step for each bad input.
 */
import { appendFileSync, chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanupProcesses, cliEnv, runCli, tempUserDir } from "./cli.helpers.js";

afterAll(cleanupProcesses);

const TEMPLATE = "user_config_template.yaml.j2";
let userDir: string;
let env: NodeJS.ProcessEnv;

/** A fresh configured endpoint; `files` overwrite or add files in its folder. */
async function endpoint(name: string, files: Record<string, string> = {}): Promise<string> {
  const configured = await runCli(["configure", name], env);
  expect(configured.stderr).toBe("");
  const dir = join(userDir, name);
  for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
  return dir;
}

beforeAll(() => {
  userDir = tempUserDir();
  env = cliEnv(userDir);
});

describe("conduit-endpoint render", () => {
  it("prints the default template's YAML with the user's variables", async () => {
    await endpoint("plain");
    const { code, stdout, stderr } = await runCli(["render", "plain", "--vars", '{"worker_init":"source x"}'], env);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout).toContain('      worker_init: "source x"\n');
    expect(stdout).toMatch(/^endpoint_setup: \n\nengine:\n {3}type: GlobusComputeEngine\n/);
    expect(stdout.endsWith("idle_heartbeats_hard: 5760\n")).toBe(true);
  });

  it("checks the schema and prints one error line with its kind", async () => {
    await endpoint("schema");
    const { code, stdout, stderr } = await runCli(["render", "schema", "--vars", '{"worker_init": 5}'], env);
    expect(code).toBe(1);
    expect(stdout).toBe("");
    expect(stderr).toBe(
      "Error (schema): User endpoint configuration is invalid: /worker_init must be string (user_config_schema.json); change userEndpointConfig.worker_init or ask the endpoint administrator to update the schema.\n",
    );
  });

  it("checks the rendered config as a UEP would: engine type, engine options, allowed_serializers", async () => {
    const cases: Array<[string, string, RegExp]> = [
      [
        "engine-type",
        "engine:\n  type: NopeEngine\n",
        /^Error \(config\): 'NopeEngine' is not a valid engine type\. Valid options are: /,
      ],
      ["engine-option", "engine:\n  type: ThreadPoolEngine\n  max_workers: lots\n", /^Error \(config\): .*max_workers/],
      [
        "serializers",
        "engine:\n  type: ThreadPoolEngine\n  allowed_serializers: [conduit.SourceCode]\n",
        /^Error \(config\): Deserialization allowlists must contain at least one code and one data deserializer\/wildcard/,
      ],
      ["not-yaml", "engine: [\n", /^Error \(config\): /],
    ];
    for (const [name, template, expected] of cases) {
      await endpoint(name, { [TEMPLATE]: template });
      const { code, stdout, stderr } = await runCli(["render", name, "--vars", "{}"], env);
      expect(code, name).toBe(1);
      expect(stdout, name).toBe("");
      expect(stderr, name).toMatch(expected);
      expect(stderr.trim().split("\n"), name).toHaveLength(1);
    }
  });

  it("rejects an unknown variable under additionalProperties: false, naming it", async () => {
    await endpoint("strict", {
      "user_config_schema.json": JSON.stringify({
        type: "object",
        properties: { worker_init: { type: "string" } },
        additionalProperties: false,
      }),
    });
    const { code, stderr } = await runCli(["render", "strict", "--vars", '{"wroker_init": "x"}'], env);
    expect(code).toBe(1);
    expect(stderr).toMatch(/^Error \(schema\): .*\/wroker_init is not allowed.*remove userEndpointConfig\.wroker_init/);
  });

  it("honours user_config_template_path and user_config_schema_path in config.yaml", async () => {
    const dir = await endpoint("paths");
    const site = join(userDir, "site-templates");
    mkdirSync(site);
    writeFileSync(
      join(site, "base.j2"),
      "engine:\n  type: {% block engine %}{% endblock %}\n{% include 'init.j2' %}\n",
    );
    writeFileSync(join(site, "init.j2"), "endpoint_setup: {{ worker_init|shell_escape }}\n");
    writeFileSync(
      join(site, "mine.yaml.j2"),
      "{% extends 'base.j2' %}{% block engine %}ThreadPoolEngine{% endblock %}\n",
    );
    writeFileSync(join(site, "schema.json"), JSON.stringify({ type: "object", required: ["worker_init"] }));
    appendFileSync(
      join(dir, "config.yaml"),
      `user_config_template_path: ${join(site, "mine.yaml.j2")}\nuser_config_schema_path: ${join(site, "schema.json")}\n`,
    );

    const ok = await runCli(["render", "paths", "--vars", '{"worker_init": "a b"}'], env);
    expect(ok.stderr).toBe("");
    expect(ok.stdout).toBe(`engine:\n  type: ThreadPoolEngine\nendpoint_setup: "'a b'"\n`);

    const missing = await runCli(["render", "paths"], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^Error \(schema\): .*\/worker_init is required/);
  });

  it("fills mapped_identity.local from --user and user_runtime from --runtime", async () => {
    await endpoint("who", {
      [TEMPLATE]:
        "engine:\n  type: ThreadPoolEngine\ndisplay_name: {{ mapped_identity.local.uname }} {{ _GC.mapped_identity.local.uid }} {{ mapped_identity.local.dir }} {{ 0 in mapped_identity.local.groups }}\nendpoint_setup: {{ user_runtime.platform }}\n",
    });
    const { code, stdout, stderr } = await runCli(
      ["render", "who", "--user", "root", "--runtime", '{"platform": "linux"}'],
      env,
    );
    expect(stderr).toBe("");
    expect(code).toBe(0);
    // `True`: Python's printing of a boolean, as Jinja renders it.
    expect(stdout).toBe(
      'engine:\n  type: ThreadPoolEngine\ndisplay_name: root 0 /root True\nendpoint_setup: "linux"\n',
    );
  });

  it("says which step failed for a template error, and names bad options and unknown users", async () => {
    await endpoint("broken", { [TEMPLATE]: "a: {{ worker_inti }}\n" });
    const undef = await runCli(["render", "broken", "--vars", '{"worker_init": "x"}'], env);
    expect(undef.code).toBe(1);
    expect(undef.stderr).toBe(
      `Error (undefined-variable): ${TEMPLATE} line 1: undefined value 'worker_inti'; define it in userEndpointConfig or use |default().\n`,
    );

    const badVars = await runCli(["render", "broken", "--vars", "{worker_init: x}"], env);
    expect(badVars.code).toBe(1);
    expect(badVars.stderr).toMatch(/^Error: --vars is not valid JSON \(.*\); pass a JSON object in single quotes/);

    const list = await runCli(["render", "broken", "--vars", "[1]"], env);
    expect(list.stderr).toMatch(/^Error: --vars must be a JSON object of names to values, not a list;/);

    const badUser = await runCli(["render", "broken", "--user", "no_such_user_x9"], env);
    expect(badUser.code).toBe(1);
    expect(badUser.stderr).toBe(
      'Error: There is no local user named "no_such_user_x9" on this machine; pass an existing account to --user (see getent passwd).\n',
    );

    const noEndpoint = await runCli(["render", "nope"], env);
    expect(noEndpoint.code).toBe(1);
    expect(noEndpoint.stderr).toMatch(/^Error: There is no endpoint named nope/);
  });

  it("says template-not-found when config.yaml points at a missing template", async () => {
    const dir = await endpoint("lost");
    appendFileSync(join(dir, "config.yaml"), `user_config_template_path: ${join(dir, "gone.j2")}\n`);
    const { code, stderr } = await runCli(["render", "lost"], env);
    expect(code).toBe(1);
    expect(stderr).toMatch(
      /^Error \(template-not-found\): The user config template .*gone\.j2 cannot be read \(ENOENT\)/,
    );
  });
  it("applies the MEP's rule for the files a template names: never the identity mapping, no writable file", async () => {
    const dir = await endpoint("named", {
      [TEMPLATE]: "engine:\n  type: ThreadPoolEngine\n{% include 'example_identity_mapping_config.json' %}\n",
      "example_identity_mapping_config.json": "{}\n",
    });
    const secret = await runCli(["render", "named"], env);
    expect(secret.code).toBe(1);
    expect(secret.stderr).toBe(
      `Error (template-file): ${join(dir, "example_identity_mapping_config.json")} (named in ${join(dir, TEMPLATE)} line 3) is the endpoint's identity mapping file, which never leaves the manager; remove its tag from the template.\n`,
    );
    writeFileSync(join(dir, TEMPLATE), "engine:\n  type: ThreadPoolEngine\n{% include 'part.j2' %}\n");
    writeFileSync(join(dir, "part.j2"), "# part\n");
    chmodSync(join(dir, "part.j2"), 0o666);
    const writable = await runCli(["render", "named"], env);
    expect(writable.code).toBe(1);
    expect(writable.stderr).toMatch(
      /^Error \(template-file\): .*part\.j2 \(named in .* line 3\) can be written by its group or by other users/,
    );
    chmodSync(join(dir, "part.j2"), 0o644);
    const ok = await runCli(["render", "named"], env);
    expect(ok.stderr).toBe("");
    expect(ok.stdout).toBe("engine:\n  type: ThreadPoolEngine\n# part\n");
  });
});
