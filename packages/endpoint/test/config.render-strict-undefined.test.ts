/**
 * An undefined value fails where Jinja's StrictUndefined fails, also where
 * minijinja's strict mode alone would let it through (filters, `~`,
 * comparisons, arithmetic, tests): the error names the expression as written,
 * its file and line, and the kind `undefined-variable`; `default`, `is
 * defined` and branches that do not run keep working; and the guard leaves
 * every template's lines where they were.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { guardStrictUndefined, type StrictSite } from "../src/config/strict-undefined.js";
import { NAME, render, renderFailure } from "./config.render-input.js";

describe("strict undefined, as Jinja's StrictUndefined", () => {
  it.each([
    ["a filter", "a: 1\nb: {{ nope|upper }}\n", 2, "nope"],
    ["shell_escape", "worker_init: {{ worker_inti|shell_escape }}\n", 1, "worker_inti"],
    ["a concatenation", "a: {{ 'x' ~ nope }}\n", 1, "nope"],
    ["a comparison", "a: 1\n\n{% if queue == 'gpu' %}b: 2{% endif %}\n", 3, "queue"],
    ["arithmetic", "a: {{ nodes * 2 }}\n", 1, "nodes"],
    ["a negation", "{% if not flag %}a: 1{% endif %}\n", 1, "flag"],
    ["a strict test", "{% if n is divisibleby 2 %}a: 1{% endif %}\n", 1, "n"],
    ["a missing key through a filter", "a: {{ cfg.nope|upper }}\n", 1, "cfg.nope"],
    ["a missing item through a filter", "a: {{ cfg['nope']|trim }}\n", 1, "cfg['nope']"],
    ["whitespace control", "a: 1\n{%- if not flag -%}\nb: {{- nope|upper -}}{%+ endif %}\n", 2, "flag"],
    ["a loop filter", "{% for x in xs if x.size > limit %}- {{ x }}\n{% endfor %}\n", 1, "limit"],
  ])("fails on an undefined value through %s, naming it and its line", (_, text, line, expression) => {
    const err = renderFailure(text, { userConfig: { cfg: { a: 1 }, xs: [{ size: 1 }] } });
    expect(err.kind).toBe("undefined-variable");
    expect(err.message).toBe(
      `${NAME} line ${line}: undefined value '${expression}'; define it in userEndpointConfig or use |default().`,
    );
  });

  it("reports the first failure in rendering order, as Jinja raises at the first", () => {
    const err = renderFailure("{% for x in xs %}\n- {{ x.name|upper }}\n{% endfor %}\nz: {{ zzz ~ 1 }}\n", {
      userConfig: { xs: [{ name: "a" }, { nome: "b" }] },
    });
    expect(err.message).toMatch(/^user_config_template\.yaml\.j2 line 2: undefined value 'x\.name'/);
  });

  it("names the expression that failed, not another guard shown beside it", () => {
    const err = renderFailure("a: {{ x|upper ~ b.c.d }}\n", { userConfig: { x: "q" } });
    expect(err.message).toMatch(/^user_config_template\.yaml\.j2 line 1: undefined value 'b\.c'/);
  });

  it("names the included sibling and its line", () => {
    const err = renderFailure("a: 1\n{% include 'provider.j2' %}\n", {
      siblings: { "provider.j2": "p: 1\nq: {{ qq|lower }}\n" },
    });
    expect(err.kind).toBe("undefined-variable");
    expect(err.message).toBe(
      "provider.j2 line 2: undefined value 'qq'; define it in userEndpointConfig or use |default().",
    );
  });

  it("keeps default, is defined, lenient filters and untaken branches working", () => {
    expect(render("a: {{ nope|default('\"x\"')|upper }}\nb: {{ nope is defined }}\nc: {{ nope|d|length }}\n")).toBe(
      'a: "X"\nb: False\nc: 0', // Python's False, as Jinja prints it
    );
    expect(render("{% if x is defined and x|length > 2 %}long: {{ x|upper }}{% else %}short: true{% endif %}\n")).toBe(
      "short: true",
    );
    expect(render("{% if x is defined and x|length > 2 %}long: {{ x|upper }}{% endif %}\n", { x: "abcd" })).toBe(
      'long: "ABCD"',
    );
    expect(render("{% if false %}{{ nope|upper }}{% endif %}a: {{ n * 2 }}\n", { n: 21 })).toBe("a: 42");
  });

  it("leaves an unknown filter to the engine's own error", () => {
    const err = renderFailure("a: {{ nope|default_missing }}\n");
    expect(err.kind).toBe("template-syntax");
    expect(err.message).toMatch(/unknown filter/);
  });

  it("rewrites only inside tags and never moves a line", () => {
    const sites: StrictSite[] = [];
    const text = "{# {{ a|upper }} #}\n{% raw %}{{ b|upper }}{% endraw %}\nc: {{ c|upper }}\n{{ '}}'|upper }}";
    const guarded = guardStrictUndefined(text, sites);
    expect(sites).toEqual([{ expression: "c" }]);
    expect(guarded).toBe(
      "{# {{ a|upper }} #}\n{% raw %}{{ b|upper }}{% endraw %}\nc: {{ (c if c is defined else c._conduit_undefined_0)|upper }}\n{{ '}}'|upper }}",
    );
    const fixture = JSON.parse(readFileSync(new URL("./fixtures/render/cases.json", import.meta.url), "utf8")) as {
      cases: { template: string; siblings: Record<string, string> }[];
    };
    for (const c of fixture.cases) {
      for (const t of [c.template, ...Object.values(c.siblings)]) {
        expect(guardStrictUndefined(t, []).split("\n")).toHaveLength(t.split("\n").length);
      }
    }
  });
});
