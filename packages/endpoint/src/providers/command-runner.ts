/**
 * Every scheduler command (sbatch, squeue, scontrol, scancel, qsub, bsub, …)
 * goes through one `CommandRunner` (Parsl's `execute_wait`), so a test can
 * replay a scheduler's recorded answers and the real one proves the rest.
 * Commands are argument vectors, never shell text: a partition or job id
 * cannot become a second command.
 */
import { spawn } from "node:child_process";
import { ConduitError } from "@conduit/protocol/wire";
import { shellJoin } from "../shell-quote.js";

export interface CommandResult {
  /** The exit code; -1 when the command could not start or was killed at its timeout. */
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface CommandOptions {
  /** Killed (SIGKILL) after this long; the result then has exit code -1 and says so in stderr. */
  timeoutMs: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Runs `argv` and resolves with how it ended; never rejects. */
export type CommandRunner = (argv: readonly string[], options: CommandOptions) => Promise<CommandResult>;

/** The default runner: a child process with no shell, its output collected. */
export const execCommand: CommandRunner = (argv, options) =>
  new Promise((resolve) => {
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    const child = spawn(argv[0], argv.slice(1), {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, options.timeoutMs);
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    child.once("error", (error) => {
      clearTimeout(timer);
      resolve({ exitCode: -1, stdout: "", stderr: `${argv[0]} could not start: ${error.message}` });
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      const err = Buffer.concat(stderr).toString("utf8");
      resolve({
        exitCode: timedOut ? -1 : (code ?? -1),
        stdout: Buffer.concat(stdout).toString("utf8"),
        stderr: timedOut
          ? `${err}${err && !err.endsWith("\n") ? "\n" : ""}killed after ${options.timeoutMs / 1000} s (cmd_timeout)`
          : err,
      });
    });
  });

/**
 * A scheduler command failed (or answered something unreadable): the
 * command, its exit code, stdout and stderr, all in the message, so the
 * admin sees what the scheduler said.
 */
export class SchedulerCommandError extends ConduitError {
  readonly command: string;
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;

  constructor(argv: readonly string[], result: CommandResult, problem?: string) {
    const command = shellJoin(argv);
    const what = problem ?? `exited with code ${result.exitCode}`;
    super(
      "SCHEDULER_COMMAND_FAILED",
      `\`${command}\` ${what}; stdout: ${quoted(result.stdout)}; stderr: ${quoted(result.stderr)}`,
    );
    this.name = "SchedulerCommandError";
    this.command = command;
    this.exitCode = result.exitCode;
    this.stdout = result.stdout;
    this.stderr = result.stderr;
  }
}

function quoted(text: string): string {
  const trimmed = text.trim();
  if (trimmed === "") return "(empty)";
  return JSON.stringify(trimmed.length > 2000 ? `…${trimmed.slice(-2000)}` : trimmed);
}
