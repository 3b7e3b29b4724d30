/**
 * Engine and provider options are declared as data: a table of fields, each
 * knowing what a valid value looks like and its default. `parseOptions`
 * checks a config block against its table once, applies the defaults and
 * returns a frozen object, so no engine ever re-checks an option.
 *
 * A YAML key with no value (`worker_init:` or a template's `{{ x|default() }}`)
 * is null, and null means "the default".
 */
import { ConfigError } from "../errors.js";

export interface Field<T> {
  /** What a valid value looks like, as the error message says it: "a positive integer". */
  readonly expected: string;
  /** Checks a present, non-null value; `path` is the option's full name, e.g. `engine.provider.max_blocks`. */
  parse(value: unknown, path: string): T;
  /** The value when the option is absent or null. */
  fallback(): T;
}

export type Fields = Record<string, Field<unknown>>;

export type Options<F extends Fields> = { readonly [K in keyof F]: F[K] extends Field<infer T> ? T : never };

/**
 * Checks `raw` (the mapping at `path`, the options of `owner`) against
 * `fields`: an unknown key or a bad value throws a ConfigError naming it.
 */
export function parseOptions<F extends Fields>(raw: unknown, path: string, owner: string, fields: F): Options<F> {
  if (raw === undefined || raw === null) raw = {};
  if (typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConfigError(`${path} must be a mapping of ${owner} options (got ${show(raw)}).`);
  }
  const given = raw as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (!Object.hasOwn(fields, key)) {
      throw new ConfigError(
        `${path}.${key} is not a valid ${owner} option; valid options are: ${Object.keys(fields).sort().join(", ")}.`,
      );
    }
  }
  const parsed: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(fields)) {
    const value = given[key];
    parsed[key] = value === undefined || value === null ? field.fallback() : field.parse(value, `${path}.${key}`);
  }
  return Object.freeze(parsed) as Options<F>;
}

export function integerField(options: { min: number; fallback: number | (() => number) }): Field<number> {
  const expected =
    options.min === 0
      ? "a non-negative integer"
      : options.min === 1
        ? "a positive integer"
        : `an integer ≥ ${options.min}`;
  return {
    expected,
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
    parse: (value, path) => parseOptions(value, path, owner, fields),
    fallback: () => parseOptions({}, "", owner, fields),
  };
}

/**
 * Limits of each worker of a process-based engine (ProcessPoolEngine,
 * HighThroughputEngine); see worker/worker-limits.ts. 0, absent or null: no limit.
 */
export const WORKER_LIMIT_FIELDS = {
  /** Each worker's JavaScript heap in MiB (V8's `--max-old-space-size`); where the UEP has a cgroup, also the memory of the worker and what it starts, plus 256 MiB. @default no limit (V8's own) */
  max_memory_per_worker: integerField({ min: 16, fallback: 0 }),
  /** Open files of each worker and of every process its tasks start (RLIMIT_NOFILE, soft and hard). @default the endpoint's own limit */
  max_open_files_per_worker: integerField({ min: 16, fallback: 0 }),
  /** Processes of the endpoint's local user, counted by the kernel across the host (RLIMIT_NPROC), as seen by workers and what they start. @default the endpoint's own limit */
  max_user_processes: integerField({ min: 1, fallback: 0 }),
};

/**
 * Refuses, with its own sentence, a key this owner does not take but a
 * sibling does (clearer than "not a valid option"); run before parseOptions.
 */
export function refuseKeys(raw: unknown, path: string, keys: readonly string[], reason: string): void {
  if (typeof raw !== "object" || raw === null) return;
  for (const key of keys) {
    const value = (raw as Record<string, unknown>)[key];
    if (value !== undefined && value !== null) throw new ConfigError(`${path}.${key} ${reason}`);
  }
}

function invalid(path: string, expected: string, value: unknown): never {
  throw new ConfigError(`${path} must be ${expected} (got ${show(value)}).`);
}

/** A short rendering of a bad value for an error message. */
export function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}
