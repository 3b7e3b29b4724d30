/**
 * What Conduit adds to minijinja so that a site template renders as under
 * Jinja (issue 16, item 6), beyond the parity corpus: the error sentences a
 * template author meets, Python's printing of values edge by edge, and the
 * rewrite keeping every line where it was. The parity test
 * (config.render-parity.test.ts) proves the outputs against Jinja itself.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { pythonFloatRepr, pythonStr, pythonStrRepr } from "../src/config/python-text.js";
import { renderUserConfigTemplate } from "../src/config/render.js";
import { rewriteTemplate } from "../src/config/strict-undefined.js";
import { input, NAME, render, renderFailure } from "./config.render-input.js";

describe("Jinja syntax minijinja lacks", () => {
  it("unpacks a tuple in set, from a list variable and from the user runtime", () => {
    expect(render("{% set major, minor, micro = v %}{{ major }}.{{ minor }}.{{ micro }}\n", { v: [3, 11, 4] })).toBe(
      "3.11.4",
    );
    const text = "{% set major, minor, micro = user_runtime.python.version_tuple %}python: {{ major }}.{{ minor }}\n";
    const userRuntime = { python: { version_tuple: [3, 12, 1] } } as unknown as NonNullable<
      Parameters<typeof renderUserConfigTemplate>[0]["userRuntime"]
    >;
    expect(renderUserConfigTemplate(input(text, { userRuntime }))).toBe("python: 3.12");
  });

  it("names the undefined value being unpacked, and says so when the lengths differ", () => {
    const undefinedValue = renderFailure("a: 1\n{% set a, b = versoin %}\n");
    expect(undefinedValue.kind).toBe("undefined-variable");
    expect(undefinedValue.message).toBe(
      `${NAME} line 2: undefined value 'versoin'; define it in userEndpointConfig or use |default().`,
    );
    expect(renderFailure("{% set a, b = v %}\n", { userConfig: { v: [1, 2, 3] } }).message).toMatch(
      /^[^\n]*cannot unpack/,
    );
  });
});

describe("names Jinja does not define", () => {
  it("hides minijinja's debug global", () => {
    expect(render("debug: {{ debug|default(false) }}\n")).toBe("debug: False");
    expect(renderFailure("debug: {{ debug }}\n").kind).toBe("undefined-variable");
    expect(render("debug: {{ debug }}\n", { debug: true })).toBe("debug: True");
  });

  it.each([
    ["filter", "lines", "a: 1\nb: {{ s|lines }}\n"],
    ["filter", "split", "a: 1\nb: {{ s|split|list }}\n"],
    ["test", "startingwith", "a: 1\nb: {{ s is startingwith('x') }}\n"],
  ])("refuses minijinja's own %s %s where the template uses it, naming file and line", (kind, name, text) => {
    const err = renderFailure(text, { userConfig: { s: "x y" } });
    expect(err.kind).toBe("template-syntax");
    expect(err.message).toBe(
      `${NAME} line 2: Jinja has no ${kind} named '${name}' (minijinja's own), so Globus Compute would refuse this template; use a Jinja ${kind} instead.`,
    );
  });

  it("lets a minijinja-only filter sit in a branch that does not run, as Jinja does", () => {
    expect(render("{% if false %}{{ s|bool }}{% endif %}a: 1\n")).toBe("a: 1");
  });
});

describe("a template that includes itself", () => {
  const loop =
    /^[^\n]* includes itself, directly or through other files, so rendering it never ends; break the loop of include and import tags\.$/;

  it.each([
    ["directly", "a: 1\n{% include 'user_config_template.yaml.j2' %}\n", {}],
    [
      "through another file",
      "a: 1\n{% include 'b.j2' %}\n",
      { "b.j2": "{% include 'c.j2' %}", "c.j2": "{% include 'b.j2' %}" },
    ],
    ["back to the template", "{% include 'b.j2' %}\n", { "b.j2": "{% include 'user_config_template.yaml.j2' %}" }],
    ["by importing itself", "{% import 'user_config_template.yaml.j2' as me %}a: 1\n", {}],
    ["inside a macro", "{% macro m() %}{% include 'user_config_template.yaml.j2' %}{% endmacro %}{{ m() }}\n", {}],
  ])("gets one sentence %s", (_, text, siblings: Record<string, string>) => {
    const err = renderFailure(text, { siblings });
    expect(err.message).toMatch(loop);
    expect(err.kind).toBe("sandbox");
  });

  it("gets one sentence for a loop of extends", () => {
    const err = renderFailure("{% extends 'b.j2' %}\n", {
      siblings: { "b.j2": "{% extends 'user_config_template.yaml.j2' %}" },
    });
    expect(err.message).toBe(
      `${NAME} line 1: b.j2 extends itself, directly or through other files, so rendering it never ends; break the loop of extends tags.`,
    );
  });

  it("still renders recursion that ends", () => {
    const siblings = { "r.j2": "{% if n > 0 %}{{ n }}{% set n = n - 1 %}{% include 'r.j2' %}{% endif %}" };
    const text = "{% set n = 3 %}{% include 'r.j2' %}\n";
    expect(renderUserConfigTemplate(input(text, { template: { name: NAME, text, siblings } }))).toBe("321");
  });
});

describe("Python's printing", () => {
  it.each([
    [1, "1.0"],
    [1e16, "1e+16"],
    [1e15, "1000000000000000.0"],
    [0.0001, "0.0001"],
    [0.00001, "1e-05"],
    [-2.5e-7, "-2.5e-07"],
    [123456789012345680000, "1.2345678901234568e+20"],
    [0.1 + 0.2, "0.30000000000000004"],
    [-0, "-0.0"],
    [Number.POSITIVE_INFINITY, "inf"],
    [Number.NaN, "nan"],
  ])("prints the float %s as %s", (value, text) => {
    expect(pythonFloatRepr(value)).toBe(text);
  });

  it("prints strings with Python's quotes and escapes", () => {
    expect(pythonStrRepr("a")).toBe("'a'");
    expect(pythonStrRepr("it's")).toBe(`"it's"`);
    expect(pythonStrRepr(`it's "x"`)).toBe(`'it\\'s "x"'`);
    expect(pythonStrRepr("a\\b\n\u0007é\u00a0")).toBe("'a\\\\b\\n\\x07é\\xa0'");
  });

  it("prints tojson text as str() prints the value", () => {
    expect(pythonStr('"top-level text"')).toBe("top-level text");
    expect(pythonStr('[true,false,null,1,1.0,"a",{"k":[]}]')).toBe("[True, False, None, 1, 1.0, 'a', {'k': []}]");
    expect(pythonStr("123456789012345678901234567890")).toBe("123456789012345678901234567890");
    expect(pythonStr("not json")).toBe("not json");
  });

  it("gives Jinja's int and float where minijinja failed with 'invalid float literal'", () => {
    expect(render("w: {{ w|int }}\nraw: {{ w[1:-1]|int }}\nm: {{ m[1:-1]|float }}\n", { w: "8", m: "2" })).toBe(
      "w: 0\nraw: 8\nm: 2.0",
    );
  });
});

describe("the rewrite", () => {
  it("moves no line of any corpus template", () => {
    const fixture = JSON.parse(readFileSync(new URL("./fixtures/render/cases.json", import.meta.url), "utf8")) as {
      cases: { template: string; siblings: Record<string, string> }[];
    };
    for (const c of fixture.cases) {
      for (const t of [c.template, ...Object.values(c.siblings)]) {
        const { text } = rewriteTemplate(t, [], { printFilter: "p", numberFilterPrefix: "n_" });
        expect(text.split("\n")).toHaveLength(t.split("\n").length);
      }
    }
  });

  it("evaluates each output once, into one guarded name, calling JavaScript only for what minijinja prints otherwise", () => {
    const sites: { expression: string }[] = [];
    const { text } = rewriteTemplate("{{- [1]|first -}}\n{{ c.next() }}", sites, { printFilter: "p" });
    const print = (n: number) =>
      `{{ _conduit_v if _conduit_v is string or _conduit_v is integer else (_conduit_v if _conduit_v is defined else _conduit_v._conduit_undefined_${n})|tojson|p }}`;
    expect(text).toBe(
      `{%- with _conduit_v = ( [1]|first ) %}${print(0)}{% endwith -%}\n{% with _conduit_v = ( c.next() ) %}${print(1)}{% endwith %}`,
    );
    expect(sites).toEqual([{ expression: "[1]|first" }, { expression: "c.next()" }]);
  });
});
