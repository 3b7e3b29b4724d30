/**
 * Broken and hostile endpoint files reach a submit: a template, a schema or a
 * user_environment.yaml that a UEP cannot use fails the submitter's future with
 * one sentence (no stack trace), never a hang, and the endpoint keeps serving.
 * Each case runs in a new UEP (a nonce in userEndpointConfig), which reads the
 * files afresh. `npm run fuzz` runs FUZZ_RUNS/50 cases per file kind; `npm test` 2.
 */
import { randomUUID } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type E2eStack, withStack } from "../e2e/helpers.js";

const RUNS = process.env.FUZZ_RUNS ? Math.max(1, Math.floor(Number(process.env.FUZZ_RUNS) / 50)) : 2;
const CASE_TIMEOUT_MS = 60_000;

let stack: E2eStack;
const files = { template: "", schema: "", environment: "" };
const defaults = { template: "", schema: "", environment: "" };

beforeAll(async () => {
  stack = await withStack({ endpointName: "fuzzed" });
  const dir = join(stack.userDir, "fuzzed");
  files.template = join(dir, "user_config_template.yaml.j2");
  files.schema = join(dir, "user_config_schema.json");
  files.environment = join(dir, "user_environment.yaml");
  for (const key of Object.keys(files) as Array<keyof typeof files>) defaults[key] = readFileSync(files[key], "utf8");
});
afterAll(async () => {
  await stack?.dispose();
});

const add = (a: number, b: number) => a + b;

/** The outcome of add(1, 2) in a new UEP with `file` replaced by `text`. */
async function submitWith(file: keyof typeof files, text: string): Promise<{ ok: true } | { ok: false; error: Error }> {
  writeFileSync(files[file], text);
  const ex = stack.executor({ nonce: randomUUID() });
  try {
    const value = await ex.submit(add, 1, 2);
    expect(value).toBe(3);
    return { ok: true };
  } catch (err) {
    return { ok: false, error: err as Error };
  } finally {
    writeFileSync(files[file], defaults[file]);
    await ex.shutdown({ wait: false, cancelFutures: true });
  }
}

function expectOneSentence(error: Error): void {
  expect(error).toBeInstanceOf(Error);
  expect(error.message.length).toBeGreaterThan(20);
  expect(error.message).not.toMatch(/\n\s+at /);
  expect(error.message).not.toMatch(/^\s*at .*:\d+:\d+/m);
}

const hostileTemplate = fc.oneof(
  fc.constantFrom(
    "engine:\n  type: {% if %}\n",
    "{{ unclosed",
    "engine:\n  type: NopeEngine\n",
    "engine: [\n",
    "- a\n- list\n",
    "engine:\n  type: ThreadPoolEngine\n  allowed_serializers: [conduit.SourceCode]\n",
    "{{ ''.__class__.__mro__ }}",
    "{{ constructor.constructor('return process')().exit(0) }}",
    "{% for x in range(1000000000) %}{{ x }}{% endfor %}",
    "engine:\n  type: ThreadPoolEngine\nendpoint_setup: exit 3\n",
  ),
  fc.string({ unit: "binary", maxLength: 120 }).map((s) => `engine: {{ ${s} }}`),
);

const hostileSchema = fc.constantFrom(
  "{",
  '{"type": 5}',
  '{"$ref": "#/nowhere"}',
  '{"type": "object", "required": ["must_have"]}',
  '{"type": "object", "properties": {"nonce": {"pattern": "("}}}',
  '{"not": {}}',
);

const hostileEnvironment = fc.constantFrom("engine: [\n", "a: b: c\n", "- a\n- b\n", "PATH: {a: 1}\n");

describe("hostile endpoint files reach a submit as one sentence", () => {
  it.each([
    ["template", hostileTemplate],
    ["schema", hostileSchema],
    ["environment", hostileEnvironment],
  ] as const)(
    "%s",
    async (file, arbitrary) => {
      await fc.assert(
        fc.asyncProperty(arbitrary, async (text) => {
          const outcome = await submitWith(file, text);
          // A hostile text may still render to something a UEP accepts (e.g. `engine: {{ 1 }}`
          // fails, but a harmless expression may not): then the task simply runs.
          if (!outcome.ok) expectOneSentence(outcome.error);
        }),
        { numRuns: RUNS },
      );
      // The endpoint still serves with its own files.
      expect(await stack.executor({ nonce: randomUUID() }).submit(add, 2, 2)).toBe(4);
    },
    CASE_TIMEOUT_MS * (RUNS + 1),
  );
});
