/**
 * container_type, container_uri and container_cmd_options: the exact launch
 * command of every type (upstream's templates, every word quoted), the
 * checks of the three keys, and how a block that could not start in its
 * container is read back as one sentence. The real runs (podman, custom)
 * are in engines.containers-podman.test.ts.
 */
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import {
  type ContainerSettings,
  containerFailure,
  containerLaunchCommand,
  inContainerCommand,
  shellSplit,
} from "../src/engines/container-command.js";
import { HighThroughputEngine } from "../src/engines/high-throughput-engine.js";
import { ConfigError } from "../src/errors.js";

const RUN_DIR = "/home/ada/.conduit/my ep";
const INNER = inContainerCommand(["--addresses", "127.0.0.1", "--block-id", "0", "--secret-file", `${RUN_DIR}/s`]);
/** The in-container command as it is quoted on the line. */
const CHECK =
  '\'command -v node >/dev/null 2>&1 || { echo "conduit-container-lacks: node (no node on its PATH)" >&2; exit 3; }; ' +
  'command -v conduit-block-manager >/dev/null 2>&1 || { echo "conduit-container-lacks: the Conduit endpoint package (no conduit-block-manager on its PATH)" >&2; exit 3; }; ' +
  "exec conduit-block-manager --addresses 127.0.0.1 --block-id 0 --secret-file '\"'\"'/home/ada/.conduit/my ep/s'\"'\"''";

/** The argv sh gives a command line: each word NUL-terminated, through printf. */
function argv(line: string): string[] {
  const out = execFileSync("sh", ["-c", `printf '%s\\0' ${line}`]).toString();
  return out.split("\0").slice(0, -1);
}

describe("the launch command of each container_type", () => {
  it("is exactly upstream's template for docker, podman and podman-hpc, every word quoted", () => {
    for (const type of ["docker", "podman", "podman-hpc"] as const) {
      const settings: ContainerSettings = {
        type,
        uri: "/images/my worker.tar",
        options: `--env 'GREETING=hello world' -v "/data sets:/data sets:ro" --ulimit nofile=20000:20000`,
      };
      expect(containerLaunchCommand(settings, RUN_DIR, INNER)).toBe(
        `${type} run --env 'GREETING=hello world' -v '/data sets:/data sets:ro' --ulimit nofile=20000:20000 ` +
          `-v '${RUN_DIR}:${RUN_DIR}' -t '/images/my worker.tar' sh -c ${CHECK}`,
      );
    }
  });

  it("is exactly upstream's template for apptainer and singularity (no -v, no -t)", () => {
    for (const type of ["apptainer", "singularity"] as const) {
      const settings: ContainerSettings = {
        type,
        uri: "/images/conduit worker.sif",
        options: "--bind '/scratch/my lab'",
      };
      expect(containerLaunchCommand(settings, RUN_DIR, INNER)).toBe(
        `${type} run --bind '/scratch/my lab' '/images/conduit worker.sif' sh -c ${CHECK}`,
      );
    }
  });

  it("has no options where container_cmd_options is not set", () => {
    expect(containerLaunchCommand({ type: "podman", uri: "localhost/w:1" }, "/run/ep", "cmd")).toBe(
      "podman run -v /run/ep:/run/ep -t localhost/w:1 cmd",
    );
    expect(containerLaunchCommand({ type: "apptainer", uri: "w.sif" }, "/run/ep", "cmd")).toBe(
      "apptainer run w.sif cmd",
    );
  });

  it("is container_cmd_options for custom, with every {EXECUTOR_RUNDIR} and {EXECUTOR_LAUNCH_CMD} replaced", () => {
    const settings: ContainerSettings = {
      type: "custom",
      options: "my-runner --bind {EXECUTOR_RUNDIR} --cwd {EXECUTOR_RUNDIR} -- {EXECUTOR_LAUNCH_CMD}",
    };
    expect(containerLaunchCommand(settings, RUN_DIR, INNER)).toBe(
      `my-runner --bind '${RUN_DIR}' --cwd '${RUN_DIR}' -- sh -c ${CHECK}`,
    );
  });

  it("gives the runtime each option, the run folder and the image as one word each, spaces included", () => {
    const settings: ContainerSettings = {
      type: "podman",
      uri: "/images/my worker.tar",
      options: `--env 'GREETING=it'"'"'s here' -v "/data sets:/d"`,
    };
    const line = containerLaunchCommand(settings, RUN_DIR, INNER);
    const got = argv(line);
    expect(got.slice(0, 9)).toEqual([
      "podman",
      "run",
      "--env",
      "GREETING=it's here",
      "-v",
      "/data sets:/d",
      "-v",
      `${RUN_DIR}:${RUN_DIR}`,
      "-t",
    ]);
    expect(got[9]).toBe("/images/my worker.tar");
    expect(got.slice(10, 12)).toEqual(["sh", "-c"]);
    // The in-container command gives the block manager its arguments as they were, the path with a space one word.
    const inner = argv(`${got[12].replace(/^.*exec conduit-block-manager /, "")}`);
    expect(inner).toEqual(["--addresses", "127.0.0.1", "--block-id", "0", "--secret-file", `${RUN_DIR}/s`]);
    expect(got).toHaveLength(13);
  });
});

describe("shellSplit (container_cmd_options as shell words, as shlex.split)", () => {
  it("splits on blanks and keeps quoted text together", () => {
    expect(shellSplit(`-v '/a b:/a b' --env "X=\\"q\\" \\$HOME" a\\ b  c`)).toEqual([
      "-v",
      "/a b:/a b",
      "--env",
      'X="q" $HOME',
      "a b",
      "c",
    ]);
    expect(shellSplit("   ")).toEqual([]);
    expect(shellSplit("''")).toEqual([""]);
  });

  it("refuses an unclosed quote and a trailing backslash", () => {
    expect(() => shellSplit("-v '/a")).toThrow("has an unclosed ' quote");
    expect(() => shellSplit('-v "/a')).toThrow('has an unclosed " quote');
    expect(() => shellSplit("-v \\")).toThrow("ends with a lone backslash");
  });
});

describe("the container keys in the engine config", () => {
  const parse = (options: Record<string, unknown>) =>
    HighThroughputEngine.parse({ provider: { type: "LocalProvider" }, ...options });
  const refusal = (options: Record<string, unknown>): string => {
    try {
      parse(options);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as Error).message;
    }
    throw new Error("accepted");
  };

  it("accepts every type with what it needs, and None (or null) as no container", () => {
    for (const type of ["apptainer", "docker", "singularity", "podman", "podman-hpc"]) {
      expect(parse({ container_type: type, container_uri: "img" }).options.container_type).toBe(type);
    }
    expect(parse({ container_type: "custom", container_cmd_options: "run {EXECUTOR_LAUNCH_CMD}" })).toBeDefined();
    expect(parse({ container_type: "None" }).options.container_type).toBe("None");
    expect(parse({ container_type: null }).options.container_type).toBe("None");
  });

  it("refuses any other type, listing the valid ones", () => {
    expect(refusal({ container_type: "bogus", container_uri: "img" })).toBe(
      'engine.container_type must be one of: apptainer, docker, singularity, podman, podman-hpc, custom, None (got "bogus").',
    );
  });

  it("refuses a type without an image, custom without its command, and keys set without a type", () => {
    expect(refusal({ container_type: "podman" })).toBe(
      "engine.container_type is podman but engine.container_uri is not set; set it to the image blocks run in (e.g. localhost/conduit-worker:latest).",
    );
    expect(refusal({ container_type: "custom" })).toMatch(
      /^engine\.container_type is custom but engine\.container_cmd_options is not set; set it to the command/,
    );
    expect(refusal({ container_type: "custom", container_cmd_options: "run image" })).toBe(
      "engine.container_cmd_options has no {EXECUTOR_LAUNCH_CMD}, so the block manager would never start; put {EXECUTOR_LAUNCH_CMD} where the container's command goes.",
    );
    expect(refusal({ container_uri: "img" })).toBe(
      "engine.container_uri is set but engine.container_type is not, so blocks would run on the host; set container_type (apptainer, docker, singularity, podman, podman-hpc, custom, None) or remove container_uri.",
    );
    expect(refusal({ container_type: "docker", container_uri: "img", container_cmd_options: "-v '/a" })).toBe(
      `engine.container_cmd_options has an unclosed ' quote ("-v '/a"); close it.`,
    );
  });
});

describe("a containerized block that could not start", () => {
  const podman: ContainerSettings = { type: "podman", uri: "localhost/nope:1" };

  it("names what the image lacks", () => {
    expect(containerFailure(podman, 3, "conduit-container-lacks: node (no node on its PATH)\r\n")).toBe(
      `the podman image 'localhost/nope:1' lacks node (no node on its PATH); build it with Node ${process.versions.node.split(".")[0]} and the Conduit endpoint package installed (npm install -g @conduit/endpoint, see the README's Containers section), or fix container_uri`,
    );
  });

  it("names a runtime that is not installed", () => {
    expect(containerFailure(podman, 127, "/tmp/x/block-0.sh: line 4: exec: podman: not found")).toBe(
      "the container runtime podman is not installed on the node that runs the block (no podman on its PATH); install it there, or set container_type to the runtime the node has",
    );
  });

  it("quotes the runtime's own last line when it could not run the image", () => {
    expect(containerFailure(podman, 125, "Trying to pull localhost/nope:1...\nError: image not known\n")).toBe(
      "podman could not run image 'localhost/nope:1' (exit 125: Error: image not known); check container_uri and that the image is on the node (it may not reach a registry), and container_cmd_options",
    );
    expect(containerFailure({ type: "apptainer", uri: "x.sif" }, 255, "FATAL: could not open image x.sif")).toMatch(
      /^apptainer could not run image 'x\.sif' \(exit 255: FATAL: could not open image x\.sif\)/,
    );
  });

  it("says nothing of other failures (those are retried as any block)", () => {
    expect(containerFailure(podman, 1, "Block 0 could not start: something")).toBeUndefined();
    expect(
      containerFailure({ type: "custom", options: "x {EXECUTOR_LAUNCH_CMD}" }, 127, "x: not found"),
    ).toBeUndefined();
  });
});
