/**
 * Runs a command under a pseudo-terminal with util-linux `script -qfec` (no
 * native pty module), so the command sees a terminal on stdin and stdout:
 * what it prints is read from `script`'s stdout, and what a person would type
 * is written to `script`'s stdin.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { shellJoin } from "../src/shell-quote.js";

export interface PtyRun {
  child: ChildProcess;
  /** Everything printed so far (CRLF line ends, as a terminal shows them). */
  output(): string;
  /** Resolves the first match of `pattern` in the output; rejects if the command exits first. */
  waitFor(pattern: RegExp): Promise<RegExpExecArray>;
  /** Types a line, Enter included. */
  type(line: string): void;
  exited: Promise<number | null>;
}

const running = new Set<ChildProcess>();

export function inPty(argv: readonly string[], env: NodeJS.ProcessEnv): PtyRun {
  const child = spawn("script", ["-qfec", shellJoin(argv), "/dev/null"], { env, stdio: ["pipe", "pipe", "pipe"] });
  running.add(child);
  let text = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => {
    text += d;
  });
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    text += d;
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => {
      running.delete(child);
      resolve(code);
    }),
  );
  let done = false;
  void exited.then(() => {
    done = true;
  });
  return {
    child,
    output: () => text,
    async waitFor(pattern) {
      for (;;) {
        const match = pattern.exec(text);
        if (match) return match;
        if (done) throw new Error(`Exited before printing ${pattern}:\n${text}`);
        await sleep(50);
      }
    },
    type: (line) => child.stdin?.write(`${line}\r`),
    exited,
  };
}

/** Kills what a failed test left running. */
export function killPtys(): void {
  for (const child of running) child.kill("SIGKILL");
}
