/**
 * What the MEP hands a UEP, built from real files: the template and the files
 * it names (never the endpoint's own state or log), the schema, the user
 * environment; a file it cannot read becomes one sentence in `template.error`.
 * Every call reads the files afresh.
 */
import { randomUUID } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseManagerConfig } from "../src/config/manager-config.js";
import { endpointPaths } from "../src/manager/endpoint-dir.js";
import { buildBootstrap } from "../src/manager/uep-bootstrap.js";
import { startUepCommand } from "./manager.helpers.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function setup(configYaml = "amqp_port: null\n") {
  const userDir = mkdtempSync(join(tmpdir(), "conduit-bootstrap-"));
  dirs.push(userDir);
  const ep = endpointPaths(userDir, "ep");
  mkdirSync(ep.dir);
  writeFileSync(ep.config, configYaml);
  const endpointId = randomUUID();
  const command = startUepCommand({ endpointId }, { userEndpointConfig: { worker_init: "source x" } });
  const build = () =>
    buildBootstrap(
      {
        ep,
        config: parseManagerConfig(configYaml, ep.config),
        endpointId,
        amqpUrl: "amqp://u:p@h:5672",
        serviceUser: "svc",
      },
      command,
    );
  return { ep, command, build, endpointId };
}

describe("UEP bootstrap", () => {
  it("carries the template with the files it names, the schema, the environment and the command", () => {
    const { ep, command, build, endpointId } = setup();
    writeFileSync(ep.template, "{% include 'engine.yaml' %}\n");
    writeFileSync(join(ep.dir, "engine.yaml"), "engine:\n  type: ThreadPoolEngine\n");
    writeFileSync(ep.schema, '{"type": "object"}');
    writeFileSync(ep.environment, "LD_LIBRARY_PATH: /opt/lib\nDEBUG_ME: true\n");
    // The endpoint's own files are not template material.
    writeFileSync(ep.log, "x".repeat(1000));
    writeFileSync(ep.pidFile, "123\n");
    writeFileSync(ep.endpointJson, "{}");
    writeFileSync(join(ep.dir, "huge.yaml"), "y".repeat(300 * 1024));

    const b = build();
    expect(b.template).toEqual({
      name: "user_config_template.yaml.j2",
      text: "{% include 'engine.yaml' %}\n",
      // Only what the template names: never config.yaml, the schema or the environment beside it.
      siblings: { "engine.yaml": "engine:\n  type: ThreadPoolEngine\n" },
    });
    expect(b.schema).toBe('{"type": "object"}');
    expect(b.userEnvironment).toEqual({ LD_LIBRARY_PATH: "/opt/lib", DEBUG_ME: "True" });
    expect(b).toMatchObject({
      v: 1,
      endpointId,
      uepId: command.uepId,
      uepName: command.uepName,
      mepPid: process.pid,
      amqpUrl: "amqp://u:p@h:5672",
      serviceUser: "svc",
      userConfig: { worker_init: "source x" },
      userRuntime: null,
      mappedIdentity: null,
      identity: command.identity,
      allowedFunctions: null,
    });
    expect(b.parentConfig).toMatchObject({ amqp_port: null, heartbeat_period: 30 });
  });

  it("reads the files afresh on every call, so an admin's edit applies to the next UEP", () => {
    const { ep, build } = setup();
    writeFileSync(ep.template, "first\n");
    expect(build().template).toMatchObject({ text: "first\n" });
    writeFileSync(ep.template, "second\n");
    writeFileSync(ep.environment, "A: b\n");
    const b = build();
    expect(b.template).toMatchObject({ text: "second\n" });
    expect(b.userEnvironment).toEqual({ A: "b" });
  });

  it("treats a missing schema or environment file as none", () => {
    const { ep, build } = setup();
    writeFileSync(ep.template, "t\n");
    const b = build();
    expect(b.schema).toBeNull();
    expect(b.userEnvironment).toEqual({});
    expect(b.template).toMatchObject({ text: "t\n" });
  });

  it("follows user_config_template_path and user_config_schema_path, and passes allowed_functions", () => {
    const other = mkdtempSync(join(tmpdir(), "conduit-tpl-"));
    dirs.push(other);
    writeFileSync(join(other, "site.yaml.j2"), "{% extends 'base.j2' %}\n");
    writeFileSync(join(other, "base.j2"), "base\n");
    writeFileSync(join(other, "schema.json"), "{}");
    const fn = randomUUID();
    const { build } = setup(
      `user_config_template_path: ${join(other, "site.yaml.j2")}\nuser_config_schema_path: ${join(other, "schema.json")}\nallowed_functions: [${fn}]\n`,
    );
    const b = build();
    expect(b.template).toEqual({
      name: "site.yaml.j2",
      text: "{% extends 'base.j2' %}\n",
      siblings: { "base.j2": "base\n" },
    });
    expect(b.schema).toBe("{}");
    expect(b.allowedFunctions).toEqual([fn]);
  });

  it("turns an unreadable template or a bad environment file into one sentence for the submitter", () => {
    const { ep, build } = setup(`user_config_template_path: /nonexistent/${randomUUID()}/t.yaml.j2\n`);
    expect(build().template).toEqual({
      error: expect.stringMatching(
        /^The endpoint cannot read its user config template \/nonexistent\/.*\/t\.yaml\.j2 \(ENOENT\); ask the endpoint's administrator to restore it or fix user_config_template_path in .*config\.yaml\.$/,
      ),
    });

    const second = setup();
    writeFileSync(second.ep.template, "t\n");
    writeFileSync(second.ep.environment, "A:\n  nested: 1\n");
    const b = second.build();
    expect(b.template).toEqual({ error: expect.stringContaining("nested list or mapping") });
    expect(ep.dir).not.toBe(second.ep.dir);
  });
});
