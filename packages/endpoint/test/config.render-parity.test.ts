/**
 * Conduit renders user config templates as Globus does: for every case of
 * fixtures/render/cases.json (rendered by Jinja2 3.1.2 with Globus's exact
 * pipeline, see generate.py there), the same text, or else the same YAML; and
 * an error exactly where Jinja gives one.
 */
import { readFileSync } from "node:fs";
import type { UserRuntime } from "@conduit/protocol";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { MappedIdentity } from "../src/config/render.js";
import { type RenderInput, renderUserConfigTemplate } from "../src/config/render.js";
import { ConfigError, type RenderErrorKind } from "../src/errors.js";

interface Case {
  name: string;
  template: string;
  siblings: Record<string, string>;
  vars: Record<string, unknown>;
  user_runtime: UserRuntime | null;
  parent_config: Record<string, unknown>;
  mapped_identity: MappedIdentity | null;
  schema: string | null;
  expected: { output: string } | { error: { type: string; message: string } };
  known_difference?: string;
}

const fixture = JSON.parse(readFileSync(new URL("./fixtures/render/cases.json", import.meta.url), "utf8")) as {
  jinja2: string;
  cases: Case[];
};

type Verdict = "exact" | "yaml" | "error" | "differs";

/** Where Jinja's error says which step failed, Conduit's `kind` must say the same. */
const EXPECTED_KINDS: Record<string, RenderErrorKind[]> = {
  // An internal such as `__class__` is undefined to Jinja's sandbox; Conduit names the escape attempt.
  UndefinedError: ["undefined-variable", "sandbox"],
  TemplateSyntaxError: ["template-syntax"],
  TemplateAssertionError: ["template-syntax"],
  TemplateNotFound: ["template-not-found"],
  ValidationError: ["schema"],
  SchemaError: ["schema"],
};

function render(c: Case): { output: string } | { error: unknown } {
  const input: RenderInput = {
    template: { name: "user_config_template.yaml.j2", text: c.template, siblings: c.siblings },
    schema: c.schema,
    userConfig: c.vars,
    userRuntime: c.user_runtime,
    parentConfig: c.parent_config,
    mappedIdentity: c.mapped_identity,
  };
  try {
    return { output: renderUserConfigTemplate(input) };
  } catch (error) {
    return { error };
  }
}

function yamlOf(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: parse(text) };
  } catch {
    return { ok: false };
  }
}

function judge(c: Case, got: ReturnType<typeof render>): { verdict: Verdict; detail: string } {
  if ("error" in c.expected) {
    if ("error" in got && got.error instanceof ConfigError) {
      const kinds = EXPECTED_KINDS[c.expected.error.type];
      if (kinds === undefined || (got.error.kind !== undefined && kinds.includes(got.error.kind))) {
        return { verdict: "error", detail: "" };
      }
      return {
        verdict: "differs",
        detail: `Jinja raised ${c.expected.error.type}: ${c.expected.error.message}; Conduit's error is of kind ${got.error.kind}: ${got.error.message}`,
      };
    }
    return {
      verdict: "differs",
      detail: `Jinja raised ${c.expected.error.type}: ${c.expected.error.message}; Conduit gave ${"output" in got ? JSON.stringify(got.output) : String(got.error)}`,
    };
  }
  if ("error" in got) return { verdict: "differs", detail: `Conduit raised ${String(got.error)}` };
  if (got.output === c.expected.output) return { verdict: "exact", detail: "" };
  const want = yamlOf(c.expected.output);
  const have = yamlOf(got.output);
  if (want.ok && have.ok) {
    try {
      expect(have.value).toEqual(want.value);
      return { verdict: "yaml", detail: "" };
    } catch {
      // falls through to "differs"
    }
  }
  return {
    verdict: "differs",
    detail: `Jinja: ${JSON.stringify(c.expected.output)}\nConduit: ${JSON.stringify(got.output)}`,
  };
}

describe(`template rendering matches Jinja2 ${fixture.jinja2} with Globus's settings`, () => {
  const cases = fixture.cases.filter((c) => c.known_difference === undefined);
  const known = fixture.cases.filter((c) => c.known_difference !== undefined);

  it(`renders all ${cases.length} corpus cases to the same text or the same YAML`, () => {
    const tally: Record<Verdict, string[]> = { exact: [], yaml: [], error: [], differs: [] };
    const failures: string[] = [];
    for (const c of cases) {
      const { verdict, detail } = judge(c, render(c));
      tally[verdict].push(c.name);
      if (verdict === "differs") failures.push(`${c.name}:\n${detail}`);
    }
    const knownLines = known.map((c) => {
      const { verdict } = judge(c, render(c));
      return `  ${c.name} (${verdict}): ${c.known_difference}`;
    });
    console.log(
      [
        `render parity: ${cases.length} cases — ${tally.exact.length} same text, ${tally.yaml.length} same YAML, ${tally.error.length} errors where Jinja errs, ${tally.differs.length} different`,
        `same YAML only: ${tally.yaml.join(", ") || "none"}`,
        `${known.length} documented differences (not counted):`,
        ...knownLines,
      ].join("\n"),
    );
    expect(failures).toEqual([]);
  });

  it("has a corpus large enough to mean something", () => {
    expect(cases.length).toBeGreaterThanOrEqual(60);
    expect(cases.filter((c) => "error" in c.expected).length).toBeGreaterThanOrEqual(10);
  });
});
