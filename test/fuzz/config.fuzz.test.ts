/**
 * Broken and hostile endpoint files through the real `conduit-endpoint` CLI
 * (child processes): config.yaml to `start` and `configure`, and the user
 * endpoint template, schema and user_environment.yaml to `render`. Each run
 * must end within a time limit with a non-zero exit and one error sentence
 * on stderr: never a stack trace, never a hang.
 *
 * Each case is a child process, so this stays small inside `npm test`
 * (FUZZ_RUNS unset: a few cases per command); `npm run fuzz` runs a tenth of
 * FUZZ_RUNS per command.
 */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const CLI = fileURLToPath(new URL("../../packages/endpoint/dist/cli/main.js", import.meta.url));
const RUNS = process.env.FUZZ_RUNS ? Math.max(1, Math.floor(Number(process.env.FUZZ_RUNS) / 10)) : 3;
/** Far above any honest run (well under a second); reaching it means a hang. */
const HANG_MS = 30_000;
/** Per test: a few seconds per case (each a child process or two), plus one hang. */
const TEST_TIMEOUT_MS = RUNS * 2 * 3_000 + HANG_MS;

let userDir: string;
let env: NodeJS.ProcessEnv;

beforeAll(() => {
  userDir = mkdtempSync(join(tmpdir(), "conduit-config-fuzz-"));
  // A closed port: a config that passes every check ends at "cannot reach the service".
  env = { ...process.env, CONDUIT_USER_DIR: userDir, CONDUIT_SERVICE_URL: "http://127.0.0.1:9", CONDUIT_TOKEN: "x" };
});

afterAll(() => {
  rmSync(userDir, { recursive: true, force: true });
});

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
  hung: boolean;
}

function runCli(args: string[]): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    const out = { stdout: "", stderr: "" };
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      out.stdout += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      out.stderr += d;
    });
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
      child.kill("SIGKILL");
    }, HANG_MS);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, ...out, hung });
    });
  });
}

/** Why `outcome` is not a clean failure (undefined when it is one). */
function problemWith(outcome: Outcome, mustFail: boolean): string | undefined {
  if (outcome.hung) return `no exit within ${HANG_MS} ms`;
  if (/^\s+at .+[:(]/m.test(outcome.stderr) || /\n\s*at (file:|node:|\/)/.test(outcome.stderr)) {
    return "a stack trace";
  }
  if (outcome.code === 0) return mustFail ? "exit code 0" : undefined;
  if (outcome.code === null) return "killed by a signal";
  // The argument parser may add one "(Did you mean --help?)" line.
  const lines = outcome.stderr
    .trim()
    .split("\n")
    .filter((line) => !/^\(Did you mean .*\?\)$/.test(line));
  if (lines.length !== 1 || lines[0].length === 0) return `${lines.length} lines on stderr instead of one sentence`;
  if (!/^Error\b/i.test(lines[0])) return "stderr does not start with Error";
  return undefined;
}

function show(outcome: Outcome): string {
  return `exit ${outcome.code}, stderr ${JSON.stringify(outcome.stderr.slice(0, 600))}`;
}

let counter = 0;
/** A freshly configured endpoint; returns its name and folder. */
async function freshEndpoint(): Promise<{ name: string; dir: string }> {
  const name = `ep${counter++}`;
  const configured = await runCli(["configure", name]);
  expect(configured.code, configured.stderr).toBe(0);
  return { name, dir: join(userDir, name) };
}

async function check(
  name: string,
  arbitrary: fc.Arbitrary<string>,
  run: (text: string) => Promise<Outcome>,
  mustFail: (text: string) => boolean,
) {
  const details = await fc.check(
    fc.asyncProperty(arbitrary, async (text) => {
      const outcome = await run(text);
      const problem = problemWith(outcome, mustFail(text));
      if (problem) throw new Error(`${problem}: ${show(outcome)}`);
    }),
    { numRuns: RUNS, endOnFailure: true },
  );
  if (details.failed) {
    throw new Error(
      `${name}: ${String(details.errorInstance)} for input ${JSON.stringify(String(details.counterexample?.[0]).slice(0, 400))} (seed ${details.seed})`,
    );
  }
}

// ------------------------------------------------------------------ inputs

const BROKEN_YAML = [
  "engine: [\n",
  "a: b: c\n",
  "\tkey: tab-indented\n",
  "key: 'unclosed\n",
  "- list\nkey: mixed\n",
  "? complex\n: key\n",
  "%YAML 9.9\n---\na: 1\n",
  "a: 1\na: 2\n",
  "!!binary notbase64\n",
  "x: !!js/function 'function(){}'\n",
  "*undefined_alias\n",
];

const ALIAS_BOMB = ["a: &a [x,x,x,x,x,x,x,x,x]"]
  .concat(
    ["b", "c", "d", "e", "f", "g", "h", "i"].map(
      (k, i) => `${k}: &${k} [${Array(9).fill(`*${"abcdefghi"[i]}`).join(",")}]`,
    ),
  )
  .join("\n");

/** Config keys an operator writes, with values of the wrong kind. */
const wrongConfigValue = fc.oneof(
  fc.string(),
  fc.integer({ min: -1_000_000, max: 1_000_000 }),
  fc.constantFrom(1e308, -0.5, true, null, [], {}, [1, 2], { nested: { deeper: [null] } }),
);

const CONFIG_KEYS = [
  "amqp_port",
  "display_name",
  "idle_heartbeats_soft",
  "idle_heartbeats_hard",
  "heartbeat_period",
  "multi_user",
  "identity_mapping_config_path",
  "public",
  "allowed_functions",
  "admins",
  "endpoint_setup",
  "engine",
  "log_dir",
];

const hostileConfig: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...BROKEN_YAML, ALIAS_BOMB, "", "---\n", "null\n", "42\n", "[1, 2]\n", '"just a string"\n'),
  fc.string({ unit: "binary", maxLength: 200 }),
  fc.integer({ min: 100, max: 20_000 }).map((n) => `${"[".repeat(n)}${"]".repeat(n)}\n`),
  fc
    .integer({ min: 100, max: 5_000 })
    .map((n) => `${Array.from({ length: n }, (_, i) => `${" ".repeat(i)}k:`).join("\n")} 1\n`),
  fc.integer({ min: 100_000, max: 3_000_000 }).map((n) => `display_name: ${"z".repeat(n)}\n`),
  // JSON is YAML: well-formed documents with wrong values and unknown keys.
  fc
    .dictionary(
      fc.oneof(fc.constantFrom(...CONFIG_KEYS), fc.string({ minLength: 1, maxLength: 20 })),
      wrongConfigValue,
      {
        minKeys: 1,
        maxKeys: 4,
      },
    )
    .map((doc) => `${JSON.stringify(doc)}\n`),
);

const TEMPLATES = [
  "{% if %}",
  "{{ unclosed",
  "{% for x in %}{% endfor %}",
  "{{ x | nosuchfilter }}",
  "{{ undefined_variable.attr.deeper }}",
  '{% include "/etc/passwd" %}',
  '{% extends "../../../etc/passwd" %}',
  "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
  "{% for x in range(1000000000) %}{{ x }}{% endfor %}",
  "{{ ''.__class__.__mro__ }}",
  "{{ constructor.constructor('return process')().exit(0) }}",
];

/** Templates that render to text a UEP rejects: `render` checks it as the UEP would, so these fail too. */
const WRONG_CONTENT_TEMPLATES = [
  "engine: [\n",
  "engine:\n  type: NopeEngine\n",
  "engine:\n  type: HighThroughputEngine\n  max_workers_per_node: lots\n",
  "- just\n- a list\n",
  "42",
];

const hostileTemplate: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...TEMPLATES, ...WRONG_CONTENT_TEMPLATES),
  fc.integer({ min: 100, max: 5_000 }).map((n) => `${"{% if true %}".repeat(n)}x${"{% endif %}".repeat(n)}`),
  fc.integer({ min: 100, max: 5_000 }).map((n) => `{{ ${"(".repeat(n)}1${")".repeat(n)} }}`),
  fc.string({ unit: "binary", maxLength: 200 }).map((s) => `engine: {{ ${s} }}`),
);

const SCHEMAS = [
  "{",
  "[]",
  "null",
  '{"type": 5}',
  '{"$ref": "#/nowhere"}',
  '{"$ref": "http://127.0.0.1:9/schema.json"}',
  '{"$ref": "file:///etc/passwd"}',
  '{"type": "object", "required": ["must_have"]}',
  '{"type": "object", "properties": {"x": {"pattern": "("}}}',
  '{"type": "string"}',
  '{"not": {}}',
];

const hostileSchema: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...SCHEMAS),
  fc.string({ unit: "binary", maxLength: 200 }).filter((s) => !["{}", "true"].includes(s.trim())),
  // An odd number of `not`s: a schema no config passes.
  fc.integer({ min: 50, max: 10_000 }).map((n) => `${'{"not":'.repeat(2 * n + 1)}{}${"}".repeat(2 * n + 1)}`),
);

const hostileEnvironment: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...BROKEN_YAML, ALIAS_BOMB, "- a\n- b\n", "PATH: {a: 1}\n", "X: null\n"),
  fc.string({ unit: "binary", maxLength: 200 }),
);

// ------------------------------------------------------------------ properties

describe("conduit-endpoint under broken and hostile files", () => {
  it(
    "start: a hostile config.yaml ends in one error sentence and a non-zero exit",
    async () => {
      const { name, dir } = await freshEndpoint();
      await check(
        "start",
        hostileConfig,
        async (text) => {
          writeFileSync(join(dir, "config.yaml"), text);
          return runCli(["start", name]);
        },
        () => true,
      );
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "configure: over a hostile config.yaml, and with hostile names",
    async () => {
      const { name, dir } = await freshEndpoint();
      await check(
        "configure over a broken config.yaml",
        hostileConfig,
        async (text) => {
          writeFileSync(join(dir, "config.yaml"), text);
          return runCli(["configure", name]);
        },
        () => true,
      );
      const hostileName = fc.oneof(
        fc.constantFrom("", ".", "..", "../escape", "a/b", "/abs", "-rf", "--help-me", "a b"),
        fc.integer({ min: 300, max: 5_000 }).map((n) => "n".repeat(n)),
        fc
          .string({ unit: "binary", minLength: 1, maxLength: 40 }) // A NUL cannot reach a child's argv at all.
          .filter((s) => !s.includes("\u0000") && /[/\\]|^\.{1,2}$/.test(s)),
      );
      await check(
        "configure NAME",
        hostileName,
        (text) => runCli(["configure", text]),
        () => true,
      );
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "render: a hostile template ends in one error sentence and a non-zero exit",
    async () => {
      const { name, dir } = await freshEndpoint();
      await check(
        "render template",
        hostileTemplate,
        async (text) => {
          writeFileSync(join(dir, "user_config_template.yaml.j2"), text);
          return runCli(["render", name, "--vars", "{}"]);
        },
        // Deeply nested but well-formed templates render (to "x" or "1", which no UEP takes); those only must not crash.
        (text) => TEMPLATES.includes(text) || WRONG_CONTENT_TEMPLATES.includes(text),
      );
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "render: a hostile schema ends in one error sentence and a non-zero exit",
    async () => {
      const { name, dir } = await freshEndpoint();
      await check(
        "render schema",
        hostileSchema,
        async (text) => {
          writeFileSync(join(dir, "user_config_schema.json"), text);
          return runCli(["render", name, "--vars", "{}"]);
        },
        // Every object here is a broken schema or one `{}` fails; an empty file or JSON that
        // is no object (`null`, `[]`, `1`), which render takes as "no schema", only must not crash it.
        (text) => {
          if (text.trim() === "") return false;
          try {
            const value: unknown = JSON.parse(text);
            return typeof value === "object" && value !== null && !Array.isArray(value);
          } catch {
            return true;
          }
        },
      );
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "render: a hostile user_environment.yaml never crashes or hangs it",
    async () => {
      const { name, dir } = await freshEndpoint();
      await check(
        "render user_environment.yaml",
        hostileEnvironment,
        async (text) => {
          mkdirSync(dir, { recursive: true });
          writeFileSync(join(dir, "user_environment.yaml"), text);
          return runCli(["render", name, "--vars", "{}"]);
        },
        // render does not read user_environment.yaml today (the UEP does); only crashes and hangs count here.
        () => false,
      );
    },
    TEST_TIMEOUT_MS,
  );
});
