/**
 * Config files are declared as data: a table of fields, each knowing what a
 * valid value looks like (as a sentence and as JSON Schema), its default and
 * what it does. `parseOptions` checks a mapping against its table once,
 * applies the defaults and returns a frozen object, so no engine ever
 * re-checks an option; `tableSchema` turns the same table into JSON Schema,
 * and the README's option tables are generated from it too.
 *
 * A YAML key with no value (`worker_init:` or a template's `{{ x|default() }}`)
 * is null, and null means "the default".
 */
import { ConfigError } from "./errors.js";

/** A JSON Schema (draft 2020-12) object. */
export type JsonSchema = { readonly [keyword: string]: unknown };

export interface Field<T> {
  /** What a valid value looks like, as the error message says it: "a positive integer". */
  readonly expected: string;
  /** The JSON Schema of a present, non-null value. */
  schema(): JsonSchema;
  /**
   * Checks a present, non-null value; `path` is the option's full name, e.g.
   * `engine.provider.max_blocks`; `source` names the file, when known.
   */
  parse(value: unknown, path: string, source?: string): T;
  /** The value when the option is absent or null. */
  fallback(): T;
  /** What the option does, one line for the README's tables. */
  readonly description?: string;
  /** The default as the README says it, where `fallback()` cannot (e.g. "the number of CPUs"). */
  readonly defaultText?: string;
  /** Listed only to be refused with its own sentence: never among the valid keys. */
  readonly refused?: boolean;
}

export type Fields = Record<string, Field<unknown>>;

/** The parsed options of a table: every key but the refused ones (typed `Field<never>`). */
export type Options<F extends Fields> = {
  readonly [K in keyof F as F[K] extends Field<never> ? never : K]: F[K] extends Field<infer T> ? T : never;
};

/** The same field with its one-line description (and the default as the docs say it) attached. */
export function doc<F extends Field<unknown>>(description: string, field: F, defaultText?: string): F {
  return { ...field, description, ...(defaultText === undefined ? {} : { defaultText }) };
}

/** The keys of `fields` a file may set (refused ones left out), sorted. */
function validKeys(fields: Fields): string[] {
  return Object.keys(fields)
    .filter((key) => !fields[key].refused)
    .sort();
}

/** `source: ` in front of a sentence, when the file is known. */
function inFile(source: string | undefined): string {
  return source === undefined ? "" : `${source}: `;
}

function join(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

/**
 * Checks `raw` (the mapping at `path`, the options of `owner`; `path` "" is a
 * file's top level) against `fields`: an unknown key or a bad value throws a
 * ConfigError naming it (and `source`, the file, for an unknown key).
 */
export function parseOptions<F extends Fields>(
  raw: unknown,
  path: string,
  owner: string,
  fields: F,
  source?: string,
): Options<F> {
  if (raw === undefined || raw === null) raw = {};
  if (typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConfigError(`${path} must be a mapping of ${owner} options (got ${show(raw)}).`);
  }
  const given = raw as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (!Object.hasOwn(fields, key)) throw unknownKey(source, path, owner, key, validKeys(fields));
  }
  const parsed: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(fields)) {
    const value = Object.hasOwn(given, key) ? given[key] : undefined;
    const absent = value === undefined || value === null;
    if (field.refused) {
      if (!absent) field.parse(value, join(path, key), source);
      continue;
    }
    parsed[key] = absent ? field.fallback() : field.parse(value, join(path, key), source);
  }
  return Object.freeze(parsed) as Options<F>;
}

/**
 * "`engine.max_worker` is not a valid ThreadPoolEngine option (did you mean
 * `max_workers`?); valid ThreadPoolEngine options are: …": the file, the key's
 * path, the nearest valid key and every valid one.
 */
function unknownKey(
  source: string | undefined,
  path: string,
  owner: string,
  key: string,
  valid: string[],
): ConfigError {
  const noun = path === "" ? "key" : "option";
  const nearest = nearestKey(key, valid);
  const hint = nearest === undefined ? "" : ` (did you mean \`${nearest}\`?)`;
  return new ConfigError(
    `${inFile(source)}\`${join(path, key)}\` is not a valid ${owner} ${noun}${hint}; valid ${owner} ${noun}s are: ${valid.join(", ")}.`,
  );
}

/** The valid key closest to a misspelt one (edit distance ≤ 2, or ≤ 3 for longer keys), if any. */
function nearestKey(key: string, valid: readonly string[]): string | undefined {
  const limit = key.length > 10 ? 3 : 2;
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const candidate of valid) {
    const distance = editDistance(key.toLowerCase(), candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Levenshtein distance (insert, delete, substitute), two rows at a time. */
function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 3) return Number.POSITIVE_INFINITY;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitute = previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j] + 1, current[j - 1] + 1, substitute));
    }
    previous = current;
  }
  return previous[b.length];
}

/** The JSON Schema of a table: its keys (each also null, which means "the default"), no other key. */
export function tableSchema(fields: Fields): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  for (const [key, field] of Object.entries(fields)) {
    properties[key] = annotate(field, field.refused ? { type: "null" } : nullable(field.schema()));
  }
  return { type: "object", properties, additionalProperties: false };
}

/**
 * A `{type, ...options}` block: `type` names an entry of `entries` (entries
 * sharing one table, such as an alias, share a branch) and the other keys are
 * that entry's options.
 */
export function typedBlockSchema(entries: Readonly<Record<string, { readonly fields: Fields }>>): JsonSchema {
  const byTable = new Map<Fields, string[]>();
  for (const [type, entry] of Object.entries(entries))
    byTable.set(entry.fields, [...(byTable.get(entry.fields) ?? []), type]);
  const branches = [...byTable].map(([fields, types]) => {
    const table = tableSchema(fields);
    return {
      ...table,
      properties: { type: types.length === 1 ? { const: types[0] } : { enum: types }, ...(table.properties as object) },
      required: ["type"],
    };
  });
  return { type: "object", required: ["type"], oneOf: branches };
}

function nullable(schema: JsonSchema): JsonSchema {
  if (typeof schema.type === "string") return { ...schema, type: [schema.type, "null"] };
  return { anyOf: [schema, { type: "null" }] };
}

function annotate(field: Field<unknown>, schema: JsonSchema): JsonSchema {
  const fallback = field.refused || field.defaultText !== undefined ? undefined : field.fallback();
  return {
    ...(field.description === undefined ? {} : { description: field.description }),
    ...schema,
    ...(fallback === undefined || fallback === null ? {} : { default: fallback }),
  };
}

/** The default as the README's tables write it. */
export function defaultText(field: Field<unknown>): string {
  if (field.defaultText !== undefined) return field.defaultText;
  if (field.refused) return "–";
  const fallback = field.fallback();
  return fallback === undefined || fallback === null ? "none" : `\`${JSON.stringify(fallback)}\``;
}

export function integerField<T extends number | undefined>(options: {
  min: number;
  fallback: T | (() => T);
}): Field<number | T> {
  const expected =
    options.min === 0
      ? "a non-negative integer"
      : options.min === 1
        ? "a positive integer"
        : `an integer ≥ ${options.min}`;
  return {
    expected,
    schema: () => ({ type: "integer", minimum: options.min }),
    parse(value, path) {
      if (typeof value !== "number" || !Number.isInteger(value) || value < options.min) invalid(path, expected, value);
      return value as number;
    },
    fallback: () => (typeof options.fallback === "function" ? options.fallback() : options.fallback),
  };
}

/** A number of seconds (fractions allowed); `positive` excludes zero. */
export function secondsField(options: { positive: boolean; fallback: number }): Field<number> {
  const expected = options.positive ? "a number of seconds > 0" : "a number of seconds ≥ 0";
  return {
    expected,
    schema: () => (options.positive ? { type: "number", exclusiveMinimum: 0 } : { type: "number", minimum: 0 }),
    parse(value, path) {
      const ok = typeof value === "number" && Number.isFinite(value) && (options.positive ? value > 0 : value >= 0);
      if (!ok) invalid(path, expected, value);
      return value as number;
    },
    fallback: () => options.fallback,
  };
}

export function fractionField(fallback: number): Field<number> {
  const expected = "a number between 0 and 1";
  return {
    expected,
    schema: () => ({ type: "number", minimum: 0, maximum: 1 }),
    parse(value, path) {
      if (typeof value !== "number" || !(value >= 0 && value <= 1)) invalid(path, expected, value);
      return value as number;
    },
    fallback: () => fallback,
  };
}

export function stringField<T extends string | undefined>(fallback: T): Field<string | T> {
  return {
    expected: "a string",
    schema: () => ({ type: "string" }),
    parse(value, path) {
      if (typeof value !== "string") invalid(path, "a string", value);
      return value as string;
    },
    fallback: () => fallback,
  };
}

export function booleanField<T extends boolean | undefined>(fallback: T): Field<boolean | T> {
  return {
    expected: "true or false",
    schema: () => ({ type: "boolean" }),
    parse(value, path) {
      if (typeof value !== "boolean") invalid(path, "true or false", value);
      return value as boolean;
    },
    fallback: () => fallback,
  };
}

export function choiceField<const C extends string>(choices: readonly C[], fallback: C): Field<C> {
  const expected = `one of: ${choices.join(", ")}`;
  return {
    expected,
    schema: () => ({ enum: [...choices] }),
    parse(value, path) {
      if (typeof value !== "string" || !choices.includes(value as C)) invalid(path, expected, value);
      return value as C;
    },
    fallback: () => fallback,
  };
}

export function stringListField(): Field<readonly string[] | undefined> {
  const expected = "a list of strings";
  return {
    expected,
    schema: () => ({ type: "array", items: { type: "string" } }),
    parse(value, path) {
      if (!Array.isArray(value) || !value.every((item) => typeof item === "string")) invalid(path, expected, value);
      return Object.freeze([...(value as string[])]);
    },
    fallback: () => undefined,
  };
}

/** A nested mapping with its own table, e.g. `job_status_kwargs`. */
export function mappingField<F extends Fields>(owner: string, fields: F): Field<Options<F>> {
  return {
    expected: `a mapping of ${owner} options`,
    schema: () => tableSchema(fields),
    parse: (value, path, source) => parseOptions(value, path, owner, fields, source),
    fallback: () => parseOptions({}, "", owner, fields),
    defaultText: "see its table",
  };
}

/**
 * A key listed only to be refused with its own sentence (`why`, given the
 * key's path), e.g. a feature this version of Conduit does not implement:
 * never silently ignored, and never offered as a valid key.
 */
export function refusedField(why: (path: string) => string): Field<never> {
  return {
    expected: "absent",
    schema: () => ({ type: "null" }),
    parse(_value, path, source) {
      throw new ConfigError(`${inFile(source)}${why(path)}`);
    },
    fallback: () => undefined as never,
    refused: true,
  };
}

/** A key of a feature this version of Conduit does not implement (`feature` says which). */
export function notImplementedField(feature: string): Field<never> {
  return doc(
    `Not implemented in this version: ${feature}.`,
    refusedField((path) => `this version of Conduit does not implement \`${path}\` (${feature}); remove it.`),
  );
}

/**
 * A key of which only some values are implemented (`encrypted: false`, a
 * loopback `address`): checked as `base`, then a value `allows` refuses gets
 * "this version of Conduit does not implement `<what>`; <fix>."
 */
export function partlyImplementedField<T>(
  base: Field<T>,
  options: {
    expected: string;
    schema: JsonSchema;
    allows(value: T): boolean;
    what(path: string, value: T): string;
    fix: string;
  },
): Field<T> {
  return {
    ...base,
    expected: options.expected,
    schema: () => options.schema,
    parse(value, path, source) {
      const parsed = base.parse(value, path, source);
      if (!options.allows(parsed)) {
        throw new ConfigError(
          `${inFile(source)}this version of Conduit does not implement ${options.what(path, parsed)}; ${options.fix}.`,
        );
      }
      return parsed;
    },
  };
}

/**
 * Limits of each worker of a process-based engine (ProcessPoolEngine,
 * HighThroughputEngine); see worker/worker-limits.ts. 0, absent or null: no limit.
 */
function invalid(path: string, expected: string, value: unknown): never {
  throw new ConfigError(`${path} must be ${expected} (got ${show(value)}).`);
}

/** A short rendering of a bad value for an error message. */
export function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}
