/**
 * Only the template's own files leave the MEP (issue 15, property 4): the
 * bootstrap carries the template and the files its `include`, `extends`,
 * `import` and `from` tags name as string literals, transitively; never the
 * identity mapping file or another file beside it. A named file that is a
 * link, not a regular file, owned by another user or writable by group or
 * others fails the UEP's start with one sentence naming it; so does a name
 * computed by an expression (with its file and line). Built from real files,
 * as root (the MEP's user in multi-user mode), with a real second local user.
 */
import { randomUUID } from "node:crypto";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { EXAMPLE_IDENTITY_MAPPING_CONFIG } from "../src/config/example-identity-mapping.js";
import { parseManagerConfig } from "../src/config/manager-config.js";
import { renderUserConfigTemplate } from "../src/config/render.js";
import { templateReferences } from "../src/config/strict-undefined.js";
import type { TemplateFiles } from "../src/config/template-files.js";
import { endpointPaths } from "../src/manager/endpoint-dir.js";
import { buildBootstrap } from "../src/manager/uep-bootstrap.js";
import { startUepCommand } from "./manager.helpers.js";
import { createUser, removeUsersAndGroups } from "./multi-user.helpers.js";

const isRoot = process.getuid?.() === 0;
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  removeUsersAndGroups();
});

const SECRET_MAPPING = '{"secret": "identity mapping"}\n';
const SECRET_ADMIN = "admin password: hunter2\n";

/** A multi-user endpoint folder holding the identity mapping and another admin file; `files` go beside them. */
function endpoint(files: Record<string, string>, configYaml = "") {
  const userDir = mkdtempSync(join(tmpdir(), "conduit-tplfiles-"));
  dirs.push(userDir);
  const ep = endpointPaths(userDir, "ep");
  mkdirSync(ep.dir);
  const config = `multi_user: true\nidentity_mapping_config_path: idmap.json\n${configYaml}`;
  writeFileSync(ep.config, config);
  writeFileSync(join(ep.dir, "example_identity_mapping_config.json"), EXAMPLE_IDENTITY_MAPPING_CONFIG, {
    mode: 0o600,
  });
  writeFileSync(join(ep.dir, "idmap.json"), SECRET_MAPPING, { mode: 0o600 });
  writeFileSync(join(ep.dir, "admin-notes.txt"), SECRET_ADMIN, { mode: 0o600 });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(ep.dir, name), text);
  const endpointId = randomUUID();
  const command = startUepCommand({ endpointId });
  const build = () =>
    buildBootstrap(
      {
        ep,
        config: parseManagerConfig(config, ep.config),
        endpointId,
        amqpUrl: "amqp://u:p@h:5672",
        serviceUser: "svc",
      },
      command,
    );
  return { ep, build };
}

/** The one sentence the UEP's start fails with. */
function startError(build: () => ReturnType<typeof buildBootstrap>): string {
  const { template } = build();
  if (!("error" in template)) throw new Error(`expected a start failure, got ${JSON.stringify(template)}`);
  return template.error;
}

/** What a UEP renders from `template` with no schema, user config, runtime, parent config or mapped identity. */
function renderAlone(template: TemplateFiles): string {
  return renderUserConfigTemplate({
    template,
    schema: null,
    userConfig: {},
    userRuntime: null,
    parentConfig: {},
    mappedIdentity: null,
  });
}

describe("the files a template sends with it", () => {
  it("are the template and the files it names, transitively; never the identity mapping or another file", () => {
    const { ep, build } = endpoint({
      "user_config_template.yaml.j2":
        "{% extends 'base.j2' %}\n{% block engine %}{% include \"engine.j2\" %}{% endblock %}\n",
      "base.j2": "{% import 'macros.j2' as m %}{% block engine %}{% endblock %}\n",
      "engine.j2": "{% from 'helpers.j2' import shell %}engine:\n  type: {{ shell() }}\n",
      "macros.j2": "{% macro x() %}x{% endmacro %}\n",
      "helpers.j2": "{% macro shell() %}ThreadPoolEngine{% endmacro %}\n",
      "unused.j2": "not named\n",
    });
    const b = build();
    const template = b.template as TemplateFiles;
    expect(Object.keys(template.siblings).sort()).toEqual(["base.j2", "engine.j2", "helpers.j2", "macros.j2"]);
    const everything = JSON.stringify(b);
    expect(everything).not.toContain("identity mapping");
    expect(everything).not.toContain("hunter2");
    expect(everything).not.toContain("example.com");
    expect(everything).not.toContain("not named");
    // And the UEP renders from exactly that.
    const rendered = renderAlone(template);
    expect(rendered).toBe("engine:\n  type: ThreadPoolEngine");
    expect(ep.dir).toBeTruthy();
  });

  it("follows lists of names, and ignores tags in comments and raw blocks", () => {
    const { build } = endpoint({
      "user_config_template.yaml.j2": [
        "{# {% include 'admin-notes.txt' %} #}",
        "{% raw %}{% include 'idmap.json' %}{% endraw %}",
        "{%- include ['missing.j2', 'part.j2'] ignore missing -%}",
        "{% include ('other.j2',) without context %}",
        "",
      ].join("\n"),
      "part.j2": "a: 1\n",
      "other.j2": "b: 2\n",
    });
    const template = build().template as TemplateFiles;
    expect(template.siblings).toEqual({ "part.j2": "a: 1\n", "other.j2": "b: 2\n" });
    const rendered = renderAlone(template);
    // The comment renders nothing and the raw block its text: neither named a file.
    expect(rendered).toBe("\n{% include 'idmap.json' %}a: 1b: 2");
  });

  it("never sends the identity mapping file, even when the template names it", () => {
    const { ep, build } = endpoint({
      "user_config_template.yaml.j2": "{% include 'example_identity_mapping_config.json' %}\n",
    });
    expect(startError(build)).toBe(
      `${join(ep.dir, "example_identity_mapping_config.json")} (named in ${ep.template} line 1) is the endpoint's identity mapping file, which never leaves the manager; remove its tag from the template.`,
    );
    writeFileSync(ep.template, "{% include 'idmap.json' %}\n");
    expect(startError(build)).toContain(
      `${join(ep.dir, "idmap.json")} (named in ${ep.template} line 1) is the endpoint's identity mapping file`,
    );
  });

  it("refuses a name computed by an expression, naming the file and line", () => {
    const { ep, build } = endpoint({
      "user_config_template.yaml.j2": "a: 1\n{% include 'part.j2' %}\n",
      "part.j2": "b: 2\n\n{% include partial ~ '.j2' %}\n",
    });
    expect(startError(build)).toBe(
      `${join(ep.dir, "part.j2")} line 3: the include tag computes its file name (partial ~ '.j2'), and the endpoint sends with a template only the files it names as string literals; write the file name in quotes instead, e.g. "part.yaml.j2".`,
    );
    writeFileSync(ep.template, "\n{% extends\n  base\n%}\n");
    expect(startError(build)).toMatch(
      /user_config_template\.yaml\.j2 line 2: the extends tag computes its file name \(base\)/,
    );
  });

  it("refuses a path instead of a plain name", () => {
    const { ep, build } = endpoint({ "user_config_template.yaml.j2": "{% include '../../etc/passwd' %}\n" });
    expect(startError(build)).toBe(
      `${ep.template} line 1: the include tag names "../../etc/passwd", which is not a plain file name in ${ep.dir}; put that file in the template's folder and name it without a path.`,
    );
  });

  it("refuses a symbolic link and a file that is not regular", () => {
    const { ep, build } = endpoint({ "user_config_template.yaml.j2": "{% include 'link.j2' %}\n" });
    symlinkSync(join(ep.dir, "admin-notes.txt"), join(ep.dir, "link.j2"));
    expect(startError(build)).toBe(
      `${join(ep.dir, "link.j2")} (named in ${ep.template} line 1) is a symbolic link, and the endpoint sends with a template only regular files of its folder, never links; replace the link with the file itself.`,
    );
    mkdirSync(join(ep.dir, "folder.j2"));
    writeFileSync(ep.template, "{% include 'folder.j2' %}\n");
    expect(startError(build)).toContain("folder.j2 (named in");
    expect(startError(build)).toContain("is not a regular file");
  });

  it("refuses a template or a named file that its group or others can write", () => {
    const { ep, build } = endpoint({
      "user_config_template.yaml.j2": "{% include 'part.j2' %}\n",
      "part.j2": "a: 1\n",
    });
    chmodSync(join(ep.dir, "part.j2"), 0o664);
    expect(startError(build)).toBe(
      `${join(ep.dir, "part.j2")} (named in ${ep.template} line 1) can be written by its group or by other users, so they could rewrite every user endpoint's configuration; remove that permission (chmod go-w on it).`,
    );
    chmodSync(join(ep.dir, "part.j2"), 0o644);
    chmodSync(ep.template, 0o646);
    expect(startError(build)).toBe(
      `${ep.template} can be written by its group or by other users, so they could rewrite every user endpoint's configuration; remove that permission (chmod go-w on it).`,
    );
    chmodSync(ep.template, 0o644);
    expect(build().template).toMatchObject({ siblings: { "part.j2": "a: 1\n" } });
  });

  it.skipIf(!isRoot)("refuses a template or a named file owned by another user", () => {
    const other = createUser();
    const { ep, build } = endpoint({
      "user_config_template.yaml.j2": "{% include 'part.j2' %}\n",
      "part.j2": "a: 1\n",
    });
    chownSync(join(ep.dir, "part.j2"), other.uid, other.gid);
    expect(startError(build)).toBe(
      `${join(ep.dir, "part.j2")} (named in ${ep.template} line 1) belongs to uid ${other.uid}, not to uid 0 that runs the endpoint, so another user could rewrite every user endpoint's configuration; make it the endpoint's own file (chown 0 on it).`,
    );
    chownSync(join(ep.dir, "part.j2"), 0, 0);
    chownSync(ep.template, other.uid, other.gid);
    expect(startError(build)).toMatch(/user_config_template\.yaml\.j2 belongs to uid \d+, not to uid 0/);
  });

  it("survives a template that includes itself, directly or through another file", () => {
    const { ep, build } = endpoint({
      "user_config_template.yaml.j2": "a: 1\n{% include 'user_config_template.yaml.j2' %}\n{% include 'loop.j2' %}\n",
      "loop.j2": "{% include 'user_config_template.yaml.j2' %}\n",
    });
    const template = build().template as TemplateFiles;
    expect(Object.keys(template.siblings)).toEqual(["loop.j2"]);
    expect(() => renderAlone(template)).toThrow(
      /includes itself, directly or through other files, so rendering it never ends; break the loop/,
    );
    expect(ep.dir).toBeTruthy();
  });

  it("leaves a named file that does not exist to the engine (an untaken branch, ignore missing)", () => {
    const { build } = endpoint({
      "user_config_template.yaml.j2": "{% if false %}{% include 'nowhere.j2' %}{% endif %}a: 1\n",
    });
    expect(build().template).toMatchObject({ siblings: {} });
  });
});

describe("templateReferences", () => {
  it("reads the four tags, literal names, lists, and the line of an expression", () => {
    expect(
      templateReferences(
        [
          '{% extends "b.j2" %}',
          "{% import 'm.j2' as m %}{% from 'h.j2' import x, y as z %}",
          "{{ 'include.j2' }} {% include ['a.j2', \"c.j2\",] with context %}",
          "{% include cfg.part if cfg else 'd.j2' %}",
          "{#- {% include 'no.j2' %} -#}{%- raw -%}{% include 'no.j2' %}{%- endraw %}",
        ].join("\n"),
      ),
    ).toEqual([
      { tag: "extends", line: 1, names: ["b.j2"] },
      { tag: "import", line: 2, names: ["m.j2"] },
      { tag: "from", line: 2, names: ["h.j2"] },
      { tag: "include", line: 3, names: ["a.j2", "c.j2"] },
      { tag: "include", line: 4, expression: "cfg.part if cfg else 'd.j2'" },
    ]);
  });
});
