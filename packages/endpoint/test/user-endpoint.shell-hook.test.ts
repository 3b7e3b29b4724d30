import { describe, expect, it } from "vitest";
import { UepStartError } from "../src/errors.js";
import type { Logger } from "../src/logging.js";
import { runShellHook } from "../src/user-endpoint/shell-hook.js";

function recorder(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const push = (m: string) => void lines.push(m);
  return { lines, debug: push, info: push, warn: push, error: push };
}

describe("endpoint_setup / endpoint_teardown", () => {
  it("runs the script with /bin/sh and logs its output", async () => {
    const log = recorder();
    await runShellHook("endpoint_setup", 'echo "hello $GREETING"\necho oops >&2', {
      log,
      env: { ...process.env, GREETING: "world" },
    });
    expect(log.lines).toContain("[endpoint_setup] hello world");
    expect(log.lines).toContain("[endpoint_setup] oops");
  });

  it("fails with the exit code and the tail of stderr", async () => {
    const failure = runShellHook("endpoint_setup", "echo step one\necho 'conda: not found' >&2\nexit 7", {
      log: recorder(),
      env: process.env,
    });
    await expect(failure).rejects.toBeInstanceOf(UepStartError);
    await expect(failure).rejects.toThrow(/endpoint_setup exited with code 7 \(stderr: "conda: not found"\); fix the/);
  });

  it("does not wait for a background process that keeps its output open", async () => {
    const log = recorder();
    await runShellHook("endpoint_setup", "sleep 30 &\necho $!", { log, env: process.env });
    const pid = Number(log.lines.find((l) => /^\[endpoint_setup\] \d+$/.test(l))?.split(" ")[1]);
    process.kill(pid, "SIGKILL");
  });

  it("is killed when aborted, with its children", async () => {
    const abort = new AbortController();
    const running = runShellHook("endpoint_setup", "sleep 30", {
      log: recorder(),
      env: process.env,
      signal: abort.signal,
    });
    setTimeout(() => abort.abort(), 50);
    await expect(running).rejects.toThrow(/killed by signal SIGTERM/);
  });
});
