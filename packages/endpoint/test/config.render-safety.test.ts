/**
 * What renderUserConfigTemplate refuses, and how it says so: reserved names,
 * schema violations, template syntax and undefined values each give one
 * sentence naming the file or property and the fix; no template reaches a
 * JavaScript object; a runaway template stops.
 */
import { describe, expect, it } from "vitest";
import { DEFAULT_SCHEMA, DEFAULT_TEMPLATE } from "../src/config/defaults.js";
import { type RenderInput, renderUserConfigTemplate } from "../src/config/render.js";
import { parseUserEndpointConfig } from "../src/config/user-endpoint-config.js";
import { ConfigError } from "../src/errors.js";
import { input, NAME } from "./config.render-input.js";

function renderError(args: RenderInput): ConfigError {
  try {
    renderUserConfigTemplate(args);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

function firstLine(err: Error): string {
  return err.message.split("\n")[0];
}

describe("the default template", () => {
  it("renders with no variables to a config the UEP accepts", () => {
    const config = parseUserEndpointConfig(
      renderUserConfigTemplate(input(DEFAULT_TEMPLATE, { schema: DEFAULT_SCHEMA })),
    );
    expect(config.engine.type).toBe("GlobusComputeEngine");
    expect((config.engine.provider as Record<string, unknown>).worker_init ?? null).toBeNull();
    expect(config.endpoint_setup).toBeNull();
    expect(config.idle_heartbeats_soft).toBe(10);
    expect(config.idle_heartbeats_hard).toBe(5760);
  });

  it("carries the user's strings through as exactly the strings sent", () => {
    const worker_init = "conda activate \"my env\"\nexport A='1' # é ✓";
    const text = renderUserConfigTemplate(
      input(DEFAULT_TEMPLATE, { schema: DEFAULT_SCHEMA, userConfig: { worker_init, endpoint_setup: "a: b" } }),
    );
    const config = parseUserEndpointConfig(text);
    expect((config.engine.provider as Record<string, unknown>).worker_init).toBe(worker_init);
    expect(config.endpoint_setup).toBe("a: b");
  });

  it("cannot be steered into new YAML keys by a variable", () => {
    const text = renderUserConfigTemplate(
      input(DEFAULT_TEMPLATE, { userConfig: { worker_init: "x\nengine:\n  type: Evil" } }),
    );
    expect(parseUserEndpointConfig(text).engine.type).toBe("GlobusComputeEngine");
  });
});

describe("refused variables", () => {
  it.each(["parent_config", "user_runtime", "mapped_identity", "_GC"])("refuses a variable named %s", (name) => {
    const err = renderError(input("a: 1\n", { userConfig: { [name]: 1 } }));
    expect(err.message).toBe(
      `userEndpointConfig may not set '${name}', a name reserved for the template's own data; rename that variable.`,
    );
  });

  it("refuses variables that are not an object", () => {
    const userConfig = ["a"] as unknown as Record<string, unknown>;
    expect(renderError(input("a: 1\n", { userConfig })).message).toMatch(/^userEndpointConfig must be an object/);
  });

  it("names the property, the rule and the fix when the schema rejects a value", () => {
    const err = renderError(input(DEFAULT_TEMPLATE, { schema: DEFAULT_SCHEMA, userConfig: { worker_init: 5 } }));
    expect(firstLine(err)).toBe(
      "User endpoint configuration is invalid: /worker_init must be string (user_config_schema.json); change userEndpointConfig.worker_init or ask the endpoint administrator to update the schema.",
    );
  });

  it("lists every violation, the first in the opening sentence", () => {
    const schema = JSON.stringify({
      type: "object",
      properties: { nodes: { type: "integer", minimum: 1 }, queue: { enum: ["debug", "batch"] } },
      required: ["account"],
      additionalProperties: false,
    });
    const err = renderError(input("a: 1\n", { schema, userConfig: { nodes: 0, queue: "gpu", extra: true } }));
    const lines = err.message.split("\n");
    expect(lines[0]).toMatch(/^User endpoint configuration is invalid: \/\S+ .* \(user_config_schema\.json\); .+\.$/);
    expect(err.message).toContain("/account is required");
    expect(err.message).toContain("/extra is not allowed");
    expect(err.message).toContain("/nodes must be >= 1");
    expect(err.message).toContain('/queue must be equal to one of the allowed values ("debug", "batch")');
  });

  it("validates the raw values, before sanitising turns null and numbers into text", () => {
    const schema = JSON.stringify({ type: "object", properties: { n: { type: "integer" }, z: { type: "null" } } });
    expect(renderUserConfigTemplate(input("n: {{ n }}\nz: {{ z }}\n", { schema, userConfig: { n: 3, z: null } }))).toBe(
      "n: 3\nz: null",
    );
  });

  it("picks the draft from $schema and checks formats", () => {
    const draft7 = JSON.stringify({
      $schema: "http://json-schema.org/draft-07/schema#",
      properties: { mail: { type: "string", format: "email" } },
    });
    expect(firstLine(renderError(input("a: 1\n", { schema: draft7, userConfig: { mail: "nope" } })))).toContain(
      '/mail must match format "email"',
    );
    const draft2019 = JSON.stringify({
      $schema: "https://json-schema.org/draft/2019-09/schema",
      dependentRequired: { a: ["b"] },
    });
    expect(firstLine(renderError(input("a: 1\n", { schema: draft2019, userConfig: { a: 1 } })))).toContain(
      "/b is required when /a is set",
    );
  });

  it("treats an empty schema as no schema, as Globus does", () => {
    for (const schema of ["", "  \n", "{}", "null"]) {
      expect(renderUserConfigTemplate(input("a: {{ a }}\n", { schema, userConfig: { a: 1 } }))).toBe("a: 1");
    }
  });

  it("says clearly when the schema file itself is broken", () => {
    expect(renderError(input("a: 1\n", { schema: "{not json" })).message).toMatch(
      /^user_config_schema\.json is not valid JSON \(.+\); ask the endpoint administrator to fix or remove it\.$/,
    );
    expect(renderError(input("a: 1\n", { schema: '{"type": 5}' })).message).toMatch(
      /^user_config_schema\.json is not a valid JSON schema \(.+\); ask the endpoint administrator to fix it\.$/,
    );
    expect(
      renderError(input("a: 1\n", { schema: '{"$schema": "http://json-schema.org/draft-04/schema#"}' })).message,
    ).toMatch(/^user_config_schema\.json declares \$schema .* Conduit does not support; .*2020-12.*\.$/);
  });
});

describe("template errors", () => {
  it("names the file, the line and the undefined value", () => {
    const err = renderError(
      input("a: 1\nb: 2\nworker_init: {{ worker_inti }}\n", { userConfig: { worker_init: "x" } }),
    );
    expect(err.message).toBe(
      `${NAME} line 3: undefined value 'worker_inti'; define it in userEndpointConfig or use |default().`,
    );
  });

  it("names the whole path of an undefined attribute", () => {
    const err = renderError(input("x:\n  v: {{ _GC.user_runtime.python_version }}\n"));
    expect(err.message).toBe(
      `${NAME} line 2: undefined value '_GC.user_runtime.python_version'; test it with "is defined" or use |default().`,
    );
  });

  it.each([
    ["a: {{ x }\n", 1, "unexpected `}`"],
    ["a: 1\n{% if x %}\nb: 2\n", 2, "unexpected end of input"],
    ["a: 1\n{% frobnicate %}\n", 2, "unknown statement frobnicate"],
  ])("reports a syntax error in one sentence: %j", (text, line, what) => {
    const err = renderError(input(text, { userConfig: { x: 1 } }));
    expect(err.message).not.toContain("\n");
    expect(err.message).toMatch(new RegExp(`^${NAME} line ${line}: syntax error: .*${what}.*; .+\\.$`));
  });

  it("reports the syntax error of an included sibling under that sibling's name", () => {
    const err = renderError(
      input("{% include 'bad.yaml.j2' %}\n", {
        template: {
          name: NAME,
          text: "{% include 'bad.yaml.j2' %}\n",
          siblings: { "bad.yaml.j2": "a: 1\n{% if %}\n" },
        },
      }),
    );
    expect(err.message).toMatch(/^bad\.yaml\.j2 line 2: syntax error: .*; fix the template syntax\.$/);
  });

  it("reports an error inside an included sibling with that sibling's line", () => {
    const siblings = { "provider.yaml.j2": "provider:\n  type: LocalProvider\n  worker_init: {{ worker_inti }}\n" };
    const text = "engine:\n{% include 'provider.yaml.j2' %}\n";
    expect(renderError(input(text, { template: { name: NAME, text, siblings } })).message).toBe(
      "provider.yaml.j2 line 3: undefined value 'worker_inti'; define it in userEndpointConfig or use |default().",
    );
  });

  it("ignores a sibling that is not a template unless it is included", () => {
    const siblings = { "endpoint.notes": "{% not jinja", "user_config_schema.json": DEFAULT_SCHEMA };
    expect(renderUserConfigTemplate(input("a: 1\n", { template: { name: NAME, text: "a: 1\n", siblings } }))).toBe(
      "a: 1",
    );
  });

  it("names a missing include and where to put it", () => {
    expect(renderError(input("{% include 'provider.j2' %}\n")).message).toBe(
      `${NAME} line 1: template not found: tried to include non-existing template "provider.j2"; put provider.j2 in the same folder as ${NAME}.`,
    );
  });

  it("fails shell_escape on text that is not JSON, and keeps working afterwards", () => {
    expect(renderError(input("a: {{ 'plain'|shell_escape }}\n")).message).toMatch(
      new RegExp(`^${NAME}: shell_escape got "plain", which is not JSON text; .+\\.$`),
    );
    expect(renderUserConfigTemplate(input("a: {{ w|shell_escape }}\n", { userConfig: { w: "it's" } }))).toBe(
      `a: "'it'\\"'\\"'s'"`,
    );
  });

  it("stops a runaway template with a budget", () => {
    const err = renderError(
      input("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\n"),
    );
    expect(err.message).toMatch(/ran over its budget of \d+ steps; look for a loop/);
    expect(renderUserConfigTemplate(input("ok: true\n"))).toBe("ok: true");
  });
});

describe("the sandbox", () => {
  const escapes = [
    "{{ cfg.constructor }}",
    "{{ cfg.constructor.constructor('return process')() }}",
    "{{ cfg.__proto__ }}",
    "{{ cfg.__class__ }}",
    "{{ ''.__class__.__mro__ }}",
    "{{ cfg.toString() }}",
    "{{ [].constructor }}",
    "{{ self.__init__.__globals__ }}",
    "{{ range.constructor }}",
    "{{ cfg.hasOwnProperty('a') }}",
  ];
  it.each(escapes)("%s reaches nothing", (text) => {
    renderError(input(`x: ${text}\n`, { userConfig: { cfg: { a: 1 } } }));
  });

  it("sees JavaScript's special names as absent", () => {
    const text = "{{ cfg.constructor is defined }} {{ cfg.__proto__ is defined }} {{ cfg.valueOf is defined }}";
    expect(renderUserConfigTemplate(input(text, { userConfig: { cfg: { a: 1 } } }))).toBe("False False False"); // as Jinja prints them
  });

  it("keeps a variable named __proto__ as a plain key", () => {
    const userConfig = JSON.parse('{"cfg": {"__proto__": {"polluted": "yes"}}}') as Record<string, unknown>;
    expect(renderUserConfigTemplate(input("{% for k in cfg %}{{ k }}{% endfor %}", { userConfig }))).toBe("__proto__");
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("refuses anything but plain data from the caller", () => {
    const parentConfig = { display_name: "x", hook: () => "called" } as Record<string, unknown>;
    expect(renderError(input("a: 1\n", { parentConfig })).message).toMatch(/not plain data \(function\)/);
    expect(renderError(input("a: 1\n", { userConfig: { when: new Date(0) } })).message).toMatch(
      /^userEndpointConfig\.when is not JSON data/,
    );
  });

  it("never escapes output, whatever the file name says", () => {
    const siblings = { "part.json": '{"k": {{ v }}}\n' };
    const text = "a: {{ s }}\n{% include 'part.json' %}\n";
    const out = renderUserConfigTemplate(
      input(text, { template: { name: NAME, text, siblings }, userConfig: { s: "<b>&'", v: "x" } }),
    );
    expect(out).toBe(`a: "<b>&'"\n{"k": "x"}`);
  });

  it("shows the template the runtime and identity data, sanitised as Globus does", () => {
    const out = renderUserConfigTemplate(
      input(
        "{{ _GC.user_runtime.node_version }} {{ user_runtime.platform }} {{ _GC.mapped_identity.local.uname }} {{ mapped_identity.conduit.id }} {{ parent_config.display_name }}",
        {
          userRuntime: {
            node_version: "v20.19.0",
            sdk_version: "0.1.0",
            platform: "linux",
            arch: "x64",
            hostname: "h",
          },
          mappedIdentity: {
            local: {
              uname: "harper",
              uid: 1001,
              gid: 1001,
              groups: [1001],
              gecos: "",
              shell: "/bin/bash",
              dir: "/home/harper",
            },
            conduit: { id: "b072d17b-08fd-4ada-8949-1fddca189b5e" },
          },
          parentConfig: { display_name: "MEP" },
        },
      ),
    );
    expect(out).toBe('"v20.19.0" "linux" harper b072d17b-08fd-4ada-8949-1fddca189b5e MEP');
  });
});
