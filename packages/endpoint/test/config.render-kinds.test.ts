/**
 * Every error of the render pipeline says which step failed (`kind`), and the
 * dry run `renderTemplateFile` reads a template, its siblings and its schema
 * from disk as the MEP does and renders them as the UEP does.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DEFAULT_SCHEMA, DEFAULT_TEMPLATE } from "../src/config/defaults.js";
import { type RenderInput, renderUserConfigTemplate } from "../src/config/render.js";
import { ConfigError, type RenderErrorKind } from "../src/errors.js";
import { renderTemplateFile } from "../src/index.js";
import { input, NAME } from "./config.render-input.js";

function caught(run: () => unknown): ConfigError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

async function caughtAsync(run: () => Promise<unknown>): Promise<ConfigError> {
  try {
    await run();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

const STRICT_SCHEMA = JSON.stringify({
  type: "object",
  properties: { worker_init: { type: "string" } },
  additionalProperties: false,
});

const cases: [RenderErrorKind, string, RenderInput, RegExp][] = [
  ["reserved-name", "a variable named _GC", input("a: 1\n", { userConfig: { _GC: 1 } }), /may not set '_GC'/],
  [
    "schema",
    "a variable of the wrong type",
    input(DEFAULT_TEMPLATE, { schema: DEFAULT_SCHEMA, userConfig: { worker_init: 5 } }),
    /^User endpoint configuration is invalid: \/worker_init must be string/,
  ],
  ["schema", "a schema that is not JSON", input("a: 1\n", { schema: "{nope" }), /is not valid JSON/],
  [
    "undefined-variable",
    "a missing variable",
    input("a: {{ worker_inti }}\n", { userConfig: { worker_init: "x" } }),
    /undefined value 'worker_inti'; define it in userEndpointConfig/,
  ],
  ["undefined-variable", "an unknown function", input("a: {{ nofunc() }}\n"), /unknown function/],
  [
    "sandbox",
    "a dunder attribute",
    input("a: {{ cfg.__class__ }}\n", { userConfig: { cfg: { a: 1 } } }),
    /undefined value 'cfg.__class__'/,
  ],
  [
    "sandbox",
    "a JavaScript constructor chain",
    input("a: {{ cfg.constructor.constructor('return process')() }}\n", { userConfig: { cfg: { a: 1 } } }),
    /has no method named constructor/,
  ],
  [
    "sandbox",
    "a runaway loop",
    input("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\n"),
    /ran over its budget/,
  ],
  ["template-syntax", "an unclosed block", input("{% if x %}\na: 1\n"), /syntax error: .*; fix the template syntax\.$/],
  ["template-syntax", "an unknown filter", input("a: {{ 1|nofilter }}\n"), /unknown filter/],
  ["type", "adding a number to text", input("a: {{ 1 + 'a' }}\n"), /invalid operation/],
  [
    "type",
    "a variable that is not JSON data",
    input("a: 1\n", { userConfig: { when: new Date(0) } }),
    /^userEndpointConfig\.when is not JSON data/,
  ],
  ["shell-escape-value", "shell_escape of plain text", input("a: {{ 'plain'|shell_escape }}\n"), /shell_escape got/],
  [
    "template-not-found",
    "an include of a missing sibling",
    input("{% include 'provider.j2' %}\n"),
    /put provider\.j2 in the same folder as user_config_template\.yaml\.j2\.$/,
  ],
];

describe("render error kinds", () => {
  it.each(cases)("%s: %s", (kind, _what, args, message) => {
    const err = caught(() => renderUserConfigTemplate(args));
    expect(err.kind).toBe(kind);
    expect(err.code).toBe("CONFIG_INVALID");
    expect(err.message).toMatch(message);
  });

  it("reports a syntax error in an included sibling as template-syntax", () => {
    const text = "{% include 'part.j2' %}\n";
    const err = caught(() =>
      renderUserConfigTemplate(input(text, { template: { name: NAME, text, siblings: { "part.j2": "{% for %}" } } })),
    );
    expect(err.kind).toBe("template-syntax");
    expect(err.message).toMatch(/^part\.j2 line 1: syntax error/);
  });
});

describe("renderTemplateFile", () => {
  const root = mkdtempSync(join(tmpdir(), "conduit-render-file-"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  let n = 0;
  const folder = (files: Record<string, string>): string => {
    const dir = join(root, `t${n++}`);
    mkdirSync(dir);
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    return dir;
  };

  it("renders a template that extends and includes its siblings, with all the template's data", async () => {
    const dir = folder({
      "base.j2": "engine:\n  type: {% block engine %}ThreadPoolEngine{% endblock %}\n{% include 'hooks.j2' %}\n",
      "hooks.j2": "worker_init: {{ worker_init|shell_escape }}\n",
      [NAME]: [
        "{% extends 'base.j2' %}",
        "{% block engine %}GlobusComputeEngine{% endblock %}",
        "{% block unused %}{{ user_runtime.platform }} {{ mapped_identity.local.uname }}{% endblock %}",
        "",
      ].join("\n"),
      "meta.j2": "{{ _GC.user_runtime.platform }}/{{ mapped_identity.local.uname }}/{{ parent_config.display_name }}\n",
      "who.yaml.j2": "{% include 'meta.j2' %}\n",
    });
    const text = await renderTemplateFile({
      templatePath: join(dir, NAME),
      variables: { worker_init: "source 'my env'" },
    });
    expect(text).toBe(`engine:\n  type: GlobusComputeEngine\nworker_init: "'source '\\"'\\"'my env'\\"'\\"''"`);

    const who = await renderTemplateFile({
      templatePath: join(dir, "who.yaml.j2"),
      variables: {},
      userRuntime: { node_version: "v22", sdk_version: "0.1.0", platform: "linux", arch: "x64", hostname: "h" },
      mappedIdentity: {
        local: { uname: "alice", uid: 1000, gid: 1000, groups: [1000], gecos: "", shell: "/bin/sh", dir: "/home/a" },
        conduit: { id: "b072d17b-08fd-4ada-8949-1fddca189b5e" },
      },
      parentConfig: { display_name: "MEP" },
    });
    expect(who).toBe('"linux"/alice/MEP');
  });

  it("validates against the schema beside the template by default, a given schemaPath, or none with null", async () => {
    const dir = folder({
      [NAME]: "worker_init: {{ worker_init|default() }}\n",
      "user_config_schema.json": STRICT_SCHEMA,
    });
    const templatePath = join(dir, NAME);
    const err = await caughtAsync(() => renderTemplateFile({ templatePath, variables: { wroker_init: "x" } }));
    expect(err.kind).toBe("schema");
    expect(err.message).toMatch(/^User endpoint configuration is invalid: \/wroker_init is not allowed/);
    expect(err.message).toContain("remove userEndpointConfig.wroker_init");

    expect(await renderTemplateFile({ templatePath, variables: { wroker_init: "x" }, schemaPath: null })).toBe(
      "worker_init: ",
    );

    const elsewhere = folder({ "strict.json": JSON.stringify({ type: "object", required: ["worker_init"] }) });
    const required = await caughtAsync(() =>
      renderTemplateFile({ templatePath, variables: {}, schemaPath: join(elsewhere, "strict.json") }),
    );
    expect(required.kind).toBe("schema");
    expect(required.message).toContain("/worker_init is required");

    // A schema file that does not exist means no validation, as for the MEP.
    expect(
      await renderTemplateFile({
        templatePath,
        variables: { worker_init: "x" },
        schemaPath: join(elsewhere, "no.json"),
      }),
    ).toBe('worker_init: "x"');
  });

  it("says template-not-found for a template that does not exist", async () => {
    const templatePath = join(root, "missing", NAME);
    const err = await caughtAsync(() => renderTemplateFile({ templatePath, variables: {} }));
    expect(err.kind).toBe("template-not-found");
    expect(err.message).toBe(
      `The user config template ${templatePath} cannot be read (ENOENT); restore it, or fix the path (user_config_template_path in the endpoint's config.yaml).`,
    );
  });

  it("says schema for a schema path it cannot read", async () => {
    // A folder where the schema should be: unreadable as a file even for root.
    const dir = folder({ [NAME]: "a: 1\n" });
    mkdirSync(join(dir, "user_config_schema.json"));
    const err = await caughtAsync(() => renderTemplateFile({ templatePath: join(dir, NAME), variables: {} }));
    expect(err.kind).toBe("schema");
    expect(err.message).toMatch(/user_config_schema\.json cannot be read \(EISDIR\); fix its permissions/);
  });
});
