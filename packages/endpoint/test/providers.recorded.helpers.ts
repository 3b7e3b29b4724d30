/**
 * A scheduler that answers from recorded output: each command name (sbatch,
 * squeue, qstat, …) gets a queue of answers, every call is kept, and a call
 * with no answer left fails the test. The providers' own parsing, tables and
 * job scripts are what the tests prove.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { renderUserConfigTemplate } from "../src/config/render.js";
import { parseUserEndpointConfig } from "../src/config/user-endpoint-config.js";
import type { EngineConfig } from "../src/engines/engine-types.js";
import type { CommandResult, CommandRunner } from "../src/providers/command-runner.js";
import type { Provider } from "../src/providers/provider-types.js";

export class RecordedScheduler {
  readonly calls: string[][] = [];
  private readonly answers = new Map<string, CommandResult[]>();

  /** Queues an answer for the next call of `command`. */
  answer(command: string, stdout: string, exitCode = 0, stderr = ""): this {
    const list = this.answers.get(command) ?? [];
    list.push({ exitCode, stdout, stderr });
    this.answers.set(command, list);
    return this;
  }

  readonly run: CommandRunner = async (argv) => {
    this.calls.push([...argv]);
    const next = this.answers.get(argv[0])?.shift();
    if (!next) throw new Error(`no recorded answer left for: ${argv.join(" ")}`);
    return next;
  };

  /** The calls of one command. */
  callsOf(command: string): string[][] {
    return this.calls.filter((argv) => argv[0] === command);
  }
}

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

/** Starts `provider` in a fresh run dir with `scheduler` as its command runner; returns the run dir and a cleanup. */
export async function startRecorded(
  provider: Provider,
  scheduler: RecordedScheduler,
): Promise<{ runDir: string; cleanup: () => void }> {
  const runDir = mkdtempSync(join(tmpdir(), "conduit-recorded-"));
  await provider.start({ runDir, env: process.env, log: quiet, runCommand: scheduler.run });
  return { runDir, cleanup: () => rmSync(runDir, { recursive: true, force: true }) };
}

/**
 * The README's HPC template for `provider` (`SlurmProvider`, `PBSProProvider`),
 * rendered with `userConfig` as a UEP renders it, and its engine block: the
 * README's templates are tested, not only shown.
 */
export function readmeHpcEngine(provider: string, userConfig: Record<string, unknown>): EngineConfig {
  const readme = readFileSync(fileURLToPath(new URL("../../../README.md", import.meta.url)), "utf8");
  const section = readme.slice(readme.indexOf("### HPC: "));
  const text = [...section.matchAll(/```yaml\+jinja\n([\s\S]*?)```/g)]
    .map((m) => m[1])
    .find((block) => block.includes(`type: ${provider}\n`));
  if (text === undefined) throw new Error(`README.md's HPC section has no template with type: ${provider}`);
  const rendered = renderUserConfigTemplate({
    template: { name: "user_config_template.yaml.j2", text, siblings: {} },
    schema: null,
    userConfig,
    userRuntime: null,
    parentConfig: {},
    mappedIdentity: null,
  });
  return parseUserEndpointConfig(rendered).engine;
}
