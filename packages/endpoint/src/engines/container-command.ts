/**
 * Blocks in containers: the seed's `container_type`, `container_uri` and
 * `container_cmd_options`. A block's launch command is wrapped as upstream's
 * GlobusComputeEngine builds it (`containerized_launch_cmd`):
 *
 *   docker, podman, podman-hpc:  <type> run <options> -v <rundir>:<rundir> -t <image> <command>
 *   apptainer, singularity:      <type> run <options> <image> <command>
 *   custom:                      container_cmd_options, with {EXECUTOR_RUNDIR} and {EXECUTOR_LAUNCH_CMD} replaced
 *
 * Unlike upstream (which joins the words and splits them again on blanks),
 * every word is shell-quoted: an option or an image path with spaces stays
 * one word. `container_cmd_options` is read as shell words (quotes group
 * them, as `shlex.split`).
 *
 * Inside the container the command is `conduit-block-manager` (the endpoint
 * package's bin) found on the image's PATH, behind a check that names what
 * the image lacks (node, Conduit's endpoint package). A block that ends
 * before registering is read back (`containerFailure`): an image without
 * Conduit, a runtime not installed, an image the runtime cannot run each
 * fail the block at once with one sentence instead of being retried.
 */
import { ConfigError } from "../errors.js";
import { shellJoin, shellQuote } from "../shell-quote.js";

export const CONTAINER_TYPES = [
  "apptainer",
  "docker",
  "singularity",
  "podman",
  "podman-hpc",
  "custom",
  "None",
] as const;
export type ContainerType = (typeof CONTAINER_TYPES)[number];

/** Runtimes run as upstream runs them: `-v rundir:rundir -t`. */
const DOCKER_LIKE: readonly ContainerType[] = ["docker", "podman", "podman-hpc"];

export interface ContainerSettings {
  type: Exclude<ContainerType, "None">;
  /** The image (container_uri); required except for custom. */
  uri?: string;
  /** container_cmd_options as written; required for custom. */
  options?: string;
}

/** The executable the image must have on its PATH: the endpoint package's bin (npm install -g @conduit/endpoint). */
export const IN_CONTAINER_ENTRY = "conduit-block-manager";
/** The line a containerized block writes when its image lacks node or Conduit, read back by `containerFailure`. */
const LACKS = "conduit-container-lacks:";

/**
 * The block manager in the container: a POSIX sh check that names what the
 * image lacks, then the bin with `args`. One line without `$`, backslashes
 * or apostrophes inside its quotes, so that it survives every launcher (some
 * write the command through an unquoted here-document).
 */
export function inContainerCommand(args: readonly string[]): string {
  const check = [
    `command -v node >/dev/null 2>&1 || { echo "${LACKS} node (no node on its PATH)" >&2; exit 3; }`,
    `command -v ${IN_CONTAINER_ENTRY} >/dev/null 2>&1 || { echo "${LACKS} the Conduit endpoint package (no ${IN_CONTAINER_ENTRY} on its PATH)" >&2; exit 3; }`,
    `exec ${shellJoin([IN_CONTAINER_ENTRY, ...args])}`,
  ].join("; ");
  return shellJoin(["sh", "-c", check]);
}

/**
 * The shell command a provider runs for a containerized block: `inner` (the
 * in-container command, already a shell command line) inside the runtime,
 * as upstream's template, every word quoted.
 */
export function containerLaunchCommand(settings: ContainerSettings, runDir: string, inner: string): string {
  const { type, uri = "", options } = settings;
  if (type === "custom") {
    return (options ?? "")
      .replaceAll("{EXECUTOR_RUNDIR}", shellQuote(runDir))
      .replaceAll("{EXECUTOR_LAUNCH_CMD}", inner);
  }
  const words = options ? shellSplit(options) : [];
  const runtime = DOCKER_LIKE.includes(type)
    ? [type, "run", ...words, "-v", `${runDir}:${runDir}`, "-t", uri]
    : [type, "run", ...words, uri];
  return `${shellJoin(runtime)} ${inner}`;
}

/**
 * Why a containerized block that ended before registering could not start,
 * as one sentence, when its exit code and output tell (the image lacks
 * node or Conduit, the runtime is not installed, the runtime could not run
 * the image); undefined for any other failure. `output` is the tail of the
 * job's stdout and stderr (with -t, the container's stderr is in stdout).
 */
export function containerFailure(
  settings: ContainerSettings,
  exitCode: number | undefined,
  output: string,
): string | undefined {
  const lines = output
    .split(/\r?\n|\r/)
    .map((l) => l.trim())
    .filter((l) => l !== "");
  const { type } = settings;
  const image = settings.uri ? `image '${settings.uri}'` : "the container image";
  const lacks = lines.find((l) => l.startsWith(LACKS));
  if (lacks) {
    const what = lacks.slice(LACKS.length).trim();
    return `the ${type} ${image} lacks ${what}; build it with Node ${process.versions.node.split(".")[0]} and the Conduit endpoint package installed (npm install -g @conduit/endpoint, see the README's Containers section), or fix container_uri`;
  }
  if (type === "custom") return undefined;
  const escaped = type.replace(/[-]/g, "\\-");
  const notFound = new RegExp(
    `(^|[\\s:'"\`])${escaped}['"\`]?: (command )?not found|${escaped}['"\`]?: No such file or directory`,
  );
  if (exitCode === 127 && lines.some((l) => notFound.test(l) && !l.startsWith("Error:"))) {
    return `the container runtime ${type} is not installed on the node that runs the block (no ${type} on its PATH); install it there, or set container_type to the runtime the node has`;
  }
  const runtimeCodes = DOCKER_LIKE.includes(type) ? [125, 126, 127] : [255];
  if (exitCode !== undefined && runtimeCodes.includes(exitCode)) {
    const said = lines.at(-1);
    return `${type} could not run ${image} (exit ${exitCode}${said ? `: ${said}` : ""}); check container_uri and that the image is on the node (it may not reach a registry), and container_cmd_options`;
  }
  return undefined;
}

/** Reads the three container keys of an engine's options; throws a ConfigError for a combination that cannot work. */
export function containerSettings(
  options: { container_type: ContainerType; container_uri?: string; container_cmd_options?: string },
  path: string,
  source?: string,
): ContainerSettings | undefined {
  const at = source === undefined ? "" : `${source}: `;
  const { container_type: type, container_uri: uri, container_cmd_options: cmdOptions } = options;
  if (type === "None") {
    for (const [key, value] of [
      ["container_uri", uri],
      ["container_cmd_options", cmdOptions],
    ] as const) {
      if (value !== undefined) {
        throw new ConfigError(
          `${at}${path}.${key} is set but ${path}.container_type is not, so blocks would run on the host; set container_type (${CONTAINER_TYPES.join(", ")}) or remove ${key}.`,
        );
      }
    }
    return undefined;
  }
  if (type === "custom") {
    if (!cmdOptions?.trim()) {
      throw new ConfigError(
        `${at}${path}.container_type is custom but ${path}.container_cmd_options is not set; set it to the command that runs {EXECUTOR_LAUNCH_CMD} in your container (e.g. "my-runner --bind {EXECUTOR_RUNDIR} image.sif {EXECUTOR_LAUNCH_CMD}").`,
      );
    }
    if (!cmdOptions.includes("{EXECUTOR_LAUNCH_CMD}")) {
      throw new ConfigError(
        `${at}${path}.container_cmd_options has no {EXECUTOR_LAUNCH_CMD}, so the block manager would never start; put {EXECUTOR_LAUNCH_CMD} where the container's command goes.`,
      );
    }
    return { type, uri, options: cmdOptions };
  }
  if (!uri?.trim()) {
    throw new ConfigError(
      `${at}${path}.container_type is ${type} but ${path}.container_uri is not set; set it to the image blocks run in (e.g. localhost/conduit-worker:latest${DOCKER_LIKE.includes(type) ? "" : " or /path/to/image.sif"}).`,
    );
  }
  if (cmdOptions !== undefined) {
    try {
      shellSplit(cmdOptions);
    } catch (err) {
      throw new ConfigError(`${at}${path}.container_cmd_options ${(err as Error).message}.`);
    }
  }
  return { type, uri, options: cmdOptions };
}

/**
 * Python's `shlex.split` (POSIX mode, no comments): words separated by
 * blanks; single quotes keep everything, double quotes keep everything but
 * `\` before `"`, `\`, `$` or `` ` ``; a bare `\` keeps the next character.
 * Throws on an unclosed quote or a trailing backslash.
 */
export function shellSplit(text: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw new Error(`has an unclosed ' quote (${JSON.stringify(text)}); close it`);
      word = (word ?? "") + text.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let part = "";
      let j = i + 1;
      for (; j < text.length && text[j] !== '"'; j++) {
        if (text[j] === "\\" && j + 1 < text.length && '"\\$`'.includes(text[j + 1])) j++;
        part += text[j];
      }
      if (j >= text.length) throw new Error(`has an unclosed " quote (${JSON.stringify(text)}); close it`);
      word = (word ?? "") + part;
      i = j;
    } else if (c === "\\") {
      if (i + 1 >= text.length) throw new Error(`ends with a lone backslash (${JSON.stringify(text)}); remove it`);
      word = (word ?? "") + text[++i];
    } else {
      word = (word ?? "") + c;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}
