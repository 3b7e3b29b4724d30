/**
 * Validation of the user's raw variables against the admin's
 * user_config_schema.json, before they are sanitised or rendered (Globus's
 * `_validate_user_opts`). The schema's `$schema` picks the draft; without one
 * the newest (2020-12) applies, as Python's `jsonschema.validate` does. Unknown
 * keywords are ignored as there; `format` is checked (Python's is not).
 *
 * A 2020-12 schema (the default draft) is checked against the meta-schema by
 * a validator generated at build time (scripts/gen-validators.mjs), and the
 * default user_config_schema.json is not compiled at all: its validator is
 * generated too. Only another schema loads Ajv and compiles it.
 */
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import type { AnySchema, ErrorObject, ValidateFunction } from "ajv";
import type { Ajv2019 } from "ajv/dist/2019.js";
import type { Ajv2020 } from "ajv/dist/2020.js";
import type { Ajv } from "ajv/dist/ajv.js";
import type addFormats from "ajv-formats";
import { ConfigError } from "../errors.js";
import { ENDPOINT_FILES } from "./defaults.js";

type AjvClass = typeof Ajv | typeof Ajv2019 | typeof Ajv2020;

/** dist/config/user-config-validators.cjs, written by scripts/gen-validators.mjs. */
interface PrecompiledValidators {
  /** The JSON Schema 2020-12 meta-schema. */
  meta2020: ValidateFunction;
  /** The default user_config_schema.json (templates/). */
  defaultSchema: ValidateFunction;
  /** What `compile` keys the default schema by: JSON.stringify of it, `$schema` as Ajv spells the draft. */
  defaultSchemaSource: string;
}

/**
 * Ajv is loaded when a schema is compiled, and only the draft that schema
 * uses (each draft's class brings its own vocabularies and meta-schemas):
 * a new UEP renders its config before it starts its engine, so what it loads
 * here delays its first task.
 */
const require = createRequire(import.meta.url);
// src/config/ and dist/config/ are both two levels below the package root; the file is in dist only.
const PRECOMPILED = new URL("../../dist/config/user-config-validators.cjs", import.meta.url);
let precompiled: PrecompiledValidators | null | undefined;
/** The generated validators, or null in a tree built by `tsc -b` alone (then Ajv compiles, as before). */
function loadPrecompiled(): PrecompiledValidators | null {
  if (precompiled === undefined) {
    try {
      precompiled = require(fileURLToPath(PRECOMPILED)) as PrecompiledValidators;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "MODULE_NOT_FOUND") throw err;
      precompiled = null;
    }
  }
  return precompiled;
}
const loadDraft = {
  "2020-12": (): AjvClass => (require("ajv/dist/2020.js") as { Ajv2020: typeof Ajv2020 }).Ajv2020,
  "2019-09": (): AjvClass => (require("ajv/dist/2019.js") as { Ajv2019: typeof Ajv2019 }).Ajv2019,
  "draft-07": (): AjvClass => (require("ajv/dist/ajv.js") as { Ajv: typeof Ajv }).Ajv,
};

/** `$schema` patterns → the validator for that draft and the id it knows the draft by. */
const DRAFTS: { pattern: RegExp; load: () => AjvClass; id: string }[] = [
  {
    pattern: /\/draft\/2020-12\/schema#?$/,
    load: loadDraft["2020-12"],
    id: "https://json-schema.org/draft/2020-12/schema",
  },
  {
    pattern: /\/draft\/2019-09\/schema#?$/,
    load: loadDraft["2019-09"],
    id: "https://json-schema.org/draft/2019-09/schema",
  },
  { pattern: /\/draft-07\/schema#?$/, load: loadDraft["draft-07"], id: "http://json-schema.org/draft-07/schema#" },
];

const FILE = ENDPOINT_FILES.schema;
const MAX_LISTED_ERRORS = 10;

/**
 * Throws a ConfigError when `userConfig` breaks the schema, or when the schema
 * itself is not a usable JSON schema. Empty text, `{}` and `null` mean "no
 * schema", as in Globus.
 */
export function validateUserConfig(schemaText: string | null, userConfig: Record<string, unknown>): void {
  if (schemaText === null || schemaText.trim() === "") return;
  let schema: unknown;
  try {
    schema = JSON.parse(schemaText);
  } catch (err) {
    throw new ConfigError(
      // JSON.parse quotes the text around the error, newlines included: keep the sentence on one line.
      `${FILE} is not valid JSON (${(err as Error).message.replace(/\s+/g, " ")}); ask the endpoint administrator to fix or remove it.`,
      { cause: err, kind: "schema" },
    );
  }
  // Python's `if not schema` skips validation for these.
  if (!schema || (typeof schema === "object" && Object.keys(schema).length === 0)) return;
  const validate = compile(schema);
  if (validate(userConfig)) return;

  const problems = dedupe((validate.errors ?? []).map(describe));
  const [first = { text: "/ fails the schema", fix: "change userEndpointConfig" }, ...rest] = problems;
  const lines = [
    `User endpoint configuration is invalid: ${first.text} (${FILE}); ${first.fix} or ask the endpoint administrator to update the schema.`,
    ...rest.slice(0, MAX_LISTED_ERRORS - 1).map((p) => `Also: ${p.text}.`),
  ];
  throw new ConfigError(lines.join("\n"), { kind: "schema" });
}

function compile(schema: unknown): ValidateFunction {
  if (typeof schema !== "object" && schema !== true) {
    throw new ConfigError(
      `${FILE} must hold a JSON object (a JSON schema); ask the endpoint administrator to fix it.`,
      {
        kind: "schema",
      },
    );
  }
  let chosen = schema as AnySchema;
  let load = loadDraft["2020-12"];
  const declared =
    typeof schema === "object" && schema !== null ? (schema as { $schema?: unknown }).$schema : undefined;
  if (declared !== undefined) {
    const draft = typeof declared === "string" ? DRAFTS.find((d) => d.pattern.test(declared)) : undefined;
    if (!draft) {
      throw new ConfigError(
        `${FILE} declares $schema ${JSON.stringify(declared)}, a JSON schema draft Conduit does not support; ask the endpoint administrator to use ${DRAFTS.map((d) => d.id).join(", ")}.`,
        { kind: "schema" },
      );
    }
    load = draft.load;
    // http/https and a trailing "#" are spelling variants of one draft; Ajv knows each by one id.
    chosen = { ...(schema as object), $schema: draft.id };
  }
  const generated = load === loadDraft["2020-12"] ? loadPrecompiled() : null;
  if (generated) {
    const { meta2020, defaultSchema, defaultSchemaSource } = generated;
    if (!meta2020(chosen)) {
      // The text Ajv's own meta-schema check throws (Ajv.errorsText).
      const errors = (meta2020.errors ?? []).map((e) => `data${e.instancePath} ${e.message}`).join(", ");
      throw notASchema(new Error(`schema is invalid: ${errors}`));
    }
    if (JSON.stringify(chosen) === defaultSchemaSource) return defaultSchema;
  }
  const Validator = load();
  // A 2020-12 schema passed the generated meta-schema check above: Ajv need not compile the meta-schema again.
  const ajv = new Validator({ allErrors: true, strict: false, logger: false, validateSchema: !generated });
  (require("ajv-formats") as typeof addFormats).default(ajv);
  try {
    return ajv.compile(chosen);
  } catch (err) {
    throw notASchema(err);
  }
}

function notASchema(err: unknown): ConfigError {
  return new ConfigError(
    `${FILE} is not a valid JSON schema (${(err as Error).message}); ask the endpoint administrator to fix it.`,
    { cause: err, kind: "schema" },
  );
}

interface Problem {
  text: string;
  fix: string;
}

function describe(error: ErrorObject): Problem {
  const params = error.params as Record<string, unknown>;
  const below = (key: unknown) => `${error.instancePath}/${escapePointer(String(key))}`;
  switch (error.keyword) {
    case "required":
    case "dependentRequired":
    case "dependencies": {
      const pointer = below(params.missingProperty);
      const when = params.property === undefined ? "" : ` when ${below(params.property)} is set`;
      return { text: `${pointer} is required${when}`, fix: `set userEndpointConfig.${dotted(pointer)}` };
    }
    case "additionalProperties":
    case "unevaluatedProperties": {
      const pointer = below(params.additionalProperty ?? params.unevaluatedProperty);
      return { text: `${pointer} is not allowed`, fix: `remove userEndpointConfig.${dotted(pointer)}` };
    }
  }
  let text = `${error.instancePath || "/"} ${error.message ?? `fails ${error.keyword}`}`;
  if (error.keyword === "enum") {
    text += ` (${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")})`;
  }
  const target = error.instancePath ? `userEndpointConfig.${dotted(error.instancePath)}` : "userEndpointConfig";
  return { text, fix: `change ${target}` };
}

function dedupe(problems: Problem[]): Problem[] {
  return [...new Map(problems.map((p) => [p.text, p])).values()];
}

function escapePointer(key: string): string {
  return key.replaceAll("~", "~0").replaceAll("/", "~1");
}

/** `/a/0/b` → `a[0].b`. */
function dotted(pointer: string): string {
  return pointer
    .split("/")
    .slice(1)
    .map((token) => token.replaceAll("~1", "/").replaceAll("~0", "~"))
    .reduce((path, token) => (/^\d+$/.test(token) ? `${path}[${token}]` : path ? `${path}.${token}` : token), "");
}
