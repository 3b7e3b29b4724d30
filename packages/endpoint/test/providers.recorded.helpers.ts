/**
 * A scheduler that answers from recorded output: each command name (sbatch,
 * squeue, qstat, …) gets a queue of answers, every call is kept, and a call
 * with no answer left fails the test. The providers' own parsing, tables and
 * job scripts are what the tests prove.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
