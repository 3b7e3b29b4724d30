/**
 * Launchers by config `type` (a provider's `launcher:` block), with their
 * option tables: an unknown type or option is refused naming the valid ones.
 */
import { ConfigError } from "../errors.js";
import { booleanField, doc, type Field, type Options, parseOptions, stringField } from "../option-fields.js";
import { TypeRegistry } from "../type-registry.js";
import {
  AprunLauncher,
  JsrunLauncher,
  type Launcher,
  MpiExecLauncher,
  MpiRunLauncher,
  SimpleLauncher,
  SingleNodeLauncher,
  SrunLauncher,
  SrunMPILauncher,
  WrappedLauncher,
} from "./launchers.js";

const DEBUG = {
  debug: doc('Echo progress lines ("Found cores", "Done") into the job\'s stdout.', booleanField(true)),
};
const OVERRIDES = {
  ...DEBUG,
  overrides: doc("Extra arguments for the parallel launcher command.", stringField("")),
};

export const LAUNCHER_FIELDS = {
  SimpleLauncher: DEBUG,
  SingleNodeLauncher: {
    ...DEBUG,
    fail_on_any: doc("Fail the job when any copy fails (otherwise only when all of them fail).", booleanField(false)),
  },
  SrunLauncher: OVERRIDES,
  SrunMPILauncher: OVERRIDES,
  AprunLauncher: OVERRIDES,
  JsrunLauncher: OVERRIDES,
  MpiExecLauncher: {
    ...OVERRIDES,
    bind_cmd: doc("The mpiexec flag that binds ranks to CPUs (given `none`).", stringField("--bind-to")),
  },
  MpiRunLauncher: {
    ...OVERRIDES,
    bash_location: doc("The shell mpirun starts the command with.", stringField("/bin/bash")),
  },
  WrappedLauncher: {
    ...DEBUG,
    prepend: doc("Command put in front of the launch command (required), e.g. a container runner.", stringField("")),
  },
};

type LauncherType = keyof typeof LAUNCHER_FIELDS;

function entry<T extends LauncherType>(
  type: T,
  build: (options: Options<(typeof LAUNCHER_FIELDS)[T]>, path: string) => Launcher,
) {
  const fields = LAUNCHER_FIELDS[type];
  return {
    fields,
    create: (raw: Record<string, unknown>, path: string, source?: string) =>
      build(parseOptions(raw, path, type, fields, source) as Options<(typeof LAUNCHER_FIELDS)[T]>, path),
  };
}

const LAUNCHERS = new TypeRegistry<Launcher>("launcher", "SrunLauncher", {
  SimpleLauncher: entry("SimpleLauncher", () => new SimpleLauncher()),
  SingleNodeLauncher: entry("SingleNodeLauncher", (options) => new SingleNodeLauncher(options)),
  SrunLauncher: entry("SrunLauncher", (options) => new SrunLauncher(options)),
  SrunMPILauncher: entry("SrunMPILauncher", (options) => new SrunMPILauncher(options)),
  AprunLauncher: entry("AprunLauncher", (options) => new AprunLauncher(options)),
  JsrunLauncher: entry("JsrunLauncher", (options) => new JsrunLauncher(options)),
  MpiExecLauncher: entry("MpiExecLauncher", (options) => new MpiExecLauncher(options)),
  MpiRunLauncher: entry("MpiRunLauncher", (options) => new MpiRunLauncher(options)),
  WrappedLauncher: entry("WrappedLauncher", (options, path) => {
    if (options.prepend.trim() === "") {
      throw new ConfigError(
        `${path}.prepend is missing; WrappedLauncher needs the command to put in front of the launch command, e.g. \`prepend: "time"\`.`,
      );
    }
    return new WrappedLauncher(options);
  }),
});

export const LAUNCHER_TYPES: readonly string[] = LAUNCHERS.types;

/** Checks a `launcher:` block and builds its launcher. */
export function createLauncher(config: unknown, path: string, source?: string): Launcher {
  return LAUNCHERS.create(config, path, source);
}

/** A provider's `launcher` option: a `{type, …}` mapping, `fallback` when absent. */
export function launcherField(fallback: LauncherType): Field<Launcher> {
  return {
    expected: "a launcher mapping",
    schema: () => LAUNCHERS.schema(),
    parse: (value, path, source) => createLauncher(value, path, source),
    fallback: () => createLauncher({ type: fallback }, "launcher"),
    description: `How the job starts its block managers: a mapping with a \`type\` (${LAUNCHERS.types.join(", ")}) and its options.`,
    defaultText: `\`{type: ${fallback}}\``,
  };
}
