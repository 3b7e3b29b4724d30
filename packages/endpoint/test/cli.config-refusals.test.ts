/**
 * Keys of features this version of Conduit does not implement, and unknown
 * keys, through the built CLI: `start` and `render` refuse them with one
 * sentence and a non-zero exit (`start` with EX_CONFIG, 78), and `configure`
 * writes only a config.yaml that `start` accepts.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseManagerConfig } from "../src/config/manager-config.js";
import { cleanupProcesses, cliEnv, runCli, tempUserDir } from "./cli.helpers.js";

afterAll(cleanupProcesses);

let userDir: string;
let env: NodeJS.ProcessEnv;
let counter = 0;

beforeAll(() => {
  userDir = tempUserDir();
  env = cliEnv(userDir);
});

/** A fresh endpoint; `files` overwrite or add files in its folder. */
async function endpoint(files: Record<string, string> = {}): Promise<{ name: string; dir: string }> {
  const name = `ep${counter++}`;
  const configured = await runCli(["configure", name], env);
  expect(configured.stderr).toBe("");
  const dir = join(userDir, name);
  for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
  return { name, dir };
}

const MANAGER_REFUSALS: Array<[string, string]> = [
  [
    "public: true",
    "this version of Conduit does not implement `public` (listing the endpoint for everyone); remove it.",
  ],
  [
    "admins: [498c6a5c-0a3d-4ab6-8a9b-6bcfb9f8a6bd]",
    "this version of Conduit does not implement `admins` (endpoint administrators other than its owner); remove it.",
  ],
  [
    "heartbeat_periods: 5",
    "`heartbeat_periods` is not a valid config.yaml key (did you mean `heartbeat_period`?); valid config.yaml keys are: ",
  ],
];

describe("conduit-endpoint configure", () => {
  it("writes a config.yaml that start's checks accept, with every option", async () => {
    const plain = await endpoint();
    expect(() => parseManagerConfig(readFileSync(join(plain.dir, "config.yaml"), "utf8"), "config.yaml")).not.toThrow();
    const shared = await runCli(["configure", "shared-one", "--multi-user", "--display-name", 'a "quoted": name'], env);
    expect(shared.code).toBe(0);
    const config = parseManagerConfig(readFileSync(join(userDir, "shared-one", "config.yaml"), "utf8"), "config.yaml");
    expect(config).toMatchObject({ multi_user: true, display_name: 'a "quoted": name' });
  });
});

describe("conduit-endpoint start", () => {
  it.each(MANAGER_REFUSALS)("exits 78 with one sentence for config.yaml's %j", async (line, sentence) => {
    const { name, dir } = await endpoint();
    const config = join(dir, "config.yaml");
    writeFileSync(config, `${readFileSync(config, "utf8")}${line}\n`);
    const result = await runCli(["start", name], env);
    expect(result.code).toBe(78);
    expect(result.stdout).toBe("");
    expect(result.stderr.startsWith(`Error: ${config}: ${sentence}`)).toBe(true);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
  });
});

describe("conduit-endpoint render", () => {
  it.each(MANAGER_REFUSALS.slice(0, 2))(
    "exits non-zero with one sentence for config.yaml's %j",
    async (line, sentence) => {
      const { name, dir } = await endpoint();
      const config = join(dir, "config.yaml");
      writeFileSync(config, `${readFileSync(config, "utf8")}${line}\n`);
      const result = await runCli(["render", name, "--vars", "{}"], env);
      expect(result.code).not.toBe(0);
      expect(result.stdout).toBe("");
      expect(result.stderr).toBe(`Error: ${config}: ${sentence}\n`);
    },
  );

  const RENDERED = "The rendered user_config_template.yaml.j2";
  const TEMPLATE_REFUSALS: Array<[string, string]> = [
    [
      "engine:\n  type: GlobusComputeEngine\n  container_type: docker\n",
      "engine.container_type is docker but engine.container_uri is not set; set it to the image blocks run in (e.g. localhost/conduit-worker:latest).",
    ],
    [
      "engine:\n  type: HighThroughputEngine\n  container_cmd_options: -v /tmp:/tmp\n",
      "engine.container_cmd_options is set but engine.container_type is not, so blocks would run on the host; set container_type (apptainer, docker, singularity, podman, podman-hpc, custom, None) or remove container_cmd_options.",
    ],
    [
      "engine:\n  type: ProcessPoolEngine\n  working_dir: tasks\n",
      "this version of Conduit does not implement `engine.working_dir` (the folder blocks and workers run in; they run in the UEP's folder); remove it.",
    ],
    [
      "engine:\n  type: ThreadPoolEngine\n  label: threads\n",
      "this version of Conduit does not implement `engine.label` (a name for the engine in logs); remove it.",
    ],
    [
      "engine:\n  type: ThreadPoolEngine\n  max_memory_per_worker: 512\n",
      "`engine.max_memory_per_worker` is not a ThreadPoolEngine option, because worker threads share the UEP's process; use ProcessPoolEngine or HighThroughputEngine for per-worker limits, or remove it.",
    ],
    [
      "engine:\n  type: HighThroughputEngine\n  provider:\n    type: LocalProvider\n    max_block: 2\n",
      "`engine.provider.max_block` is not a valid LocalProvider option (did you mean `max_blocks`?); valid LocalProvider options are: init_blocks, max_blocks, min_blocks, nodes_per_block, parallelism, worker_init.",
    ],
    [
      "engine:\n  type: ThreadPoolEngine\nidle_heartbeat_soft: 10\n",
      "`idle_heartbeat_soft` is not a valid user endpoint config key (did you mean `idle_heartbeats_soft`?); valid user endpoint config keys are: allowed_functions, debug, display_name, endpoint_setup, endpoint_teardown, engine, heartbeat_period, idle_heartbeats_hard, idle_heartbeats_soft.",
    ],
  ];

  it.each(TEMPLATE_REFUSALS)("exits 1 with one sentence for the rendered %j", async (template, sentence) => {
    const { name } = await endpoint({ "user_config_template.yaml.j2": template });
    const result = await runCli(["render", name, "--vars", "{}"], env);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toBe(`Error (config): ${RENDERED}: ${sentence}\n`);
  });

  it("prints a template that asks only for what is implemented", async () => {
    const { name } = await endpoint({
      "user_config_template.yaml.j2":
        "engine:\n  type: HighThroughputEngine\n  encrypted: false\n  address: 127.0.0.1\n  max_memory_per_worker: 512\n  max_open_files_per_worker: 256\n  max_user_processes: 64\n",
    });
    const result = await runCli(["render", name, "--vars", "{}"], env);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
  });
});
