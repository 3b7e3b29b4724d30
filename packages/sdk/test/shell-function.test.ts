/**
 * ShellFunction through the real service and endpoint (child processes,
 * PGlite, a RabbitMQ vhost of their own): bash runs the command on the
 * endpoint, and every exit code comes back as a ShellResult.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConduitError, TaskExecutionFailed } from "@conduit/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Executor } from "../src/executor.js";
import { ShellFunction } from "../src/shell-function.js";
import { startTestStack, type TestStack } from "./stack.helpers.js";

let env: TestStack;
let ex: Executor;
let scratch: string;

beforeAll(async () => {
  env = await startTestStack();
  ex = new Executor({ endpointId: env.endpointId, client: env.client });
  scratch = mkdtempSync(join(tmpdir(), "conduit-shell-test-"));
}, 120_000);

afterAll(async () => {
  await ex?.shutdown({ cancelFutures: true });
  await env?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("ShellFunction on a real endpoint", () => {
  it("fills {fields} shell-quoted, and returns stdout, stderr and the returncode of any exit", async () => {
    const echo = new ShellFunction("echo {message}; echo oops >&2; exit {code}");
    const hostile = "hi; rm -rf ~ $(touch pwned) `id` 'quoted'";
    const ok = await ex.submit(echo, { message: hostile, code: 0 });
    expect(ok).toEqual({
      cmd: `echo 'hi; rm -rf ~ $(touch pwned) \`id\` '"'"'quoted'"'"''; echo oops >&2; exit 0`,
      stdout: hostile,
      stderr: "oops",
      returncode: 0,
      exceptionName: null,
    });
    // A non-zero exit is a result, not a rejected future.
    const failed = await ex.submit(echo, { message: "x", code: 3 });
    expect(failed).toMatchObject({ stdout: "x", returncode: 3, exceptionName: "CalledProcessError" });
  }, 60_000);

  it("keeps the last snippetLines lines, writes the named files, and inserts {name!raw} unquoted", async () => {
    const out = join(scratch, "out.txt");
    const seq = new ShellFunction("seq 1 {n!raw} | tee /dev/stderr", { snippetLines: 2, stdout: out });
    const r = await ex.submit(seq, { n: "5" });
    expect(r).toMatchObject({ cmd: "seq 1 5 | tee /dev/stderr", stdout: "4\n5", stderr: "4\n5", returncode: 0 });
    expect(readFileSync(out, "utf8")).toBe("1\n2\n3\n4\n5\n");
  }, 60_000);

  it("kills the command's whole process group at the walltime: returncode 124, TimeoutExpired", async () => {
    const pidFile = join(scratch, "child.pid");
    const slow = new ShellFunction("sleep 300 & echo $! > {pidFile}; echo started; wait", { walltime: 1 });
    const r = await ex.submit(slow, { pidFile });
    expect(r).toMatchObject({ stdout: "started", returncode: 124, exceptionName: "TimeoutExpired" });
    const child = Number(readFileSync(pidFile, "utf8"));
    expect(child).toBeGreaterThan(0);
    await expect.poll(() => alive(child), { timeout: 10_000, interval: 50 }).toBe(false);
  }, 60_000);

  it("registers like any function, and runs in a directory of its own", async () => {
    const pwd = new ShellFunction("pwd; touch here", { name: "where" });
    const id = await ex.registerFunction(pwd);
    expect(await env.client.getFunction(id)).toMatchObject({
      name: "where",
      function: { strategy: "conduit.ShellCode" },
    });
    const r = await ex.submitToRegisteredFunction<{ stdout: string; returncode: number }>(id);
    expect(r.returncode).toBe(0);
    // A temporary directory when the engine gives none, removed when the command ends.
    expect(r.stdout).toMatch(/conduit-shell-/);
    expect(existsSync(r.stdout)).toBe(false);
  }, 60_000);

  it("fails the task, naming the field, when a value is missing or not text", async () => {
    const echo = new ShellFunction("echo {message}");
    await expect(ex.submit(echo, {})).rejects.toThrow(TaskExecutionFailed);
    await expect(ex.submit(echo, {})).rejects.toThrow(
      "The shell command needs a value for {message}; submit it as ex.submit(shellFunction, { message: … }).",
    );
    await expect(ex.submit(echo, { message: { a: 1 } })).rejects.toThrow(
      "The value for {message} is an object; pass a string, a number or a boolean.",
    );
  }, 60_000);

  it("refuses a malformed command or option when built, naming the fix", () => {
    const home = "$" + "{HOME}"; // bash's, not a JavaScript template's
    expect(() => new ShellFunction("echo {a b}")).toThrow(
      `The shell command has the field {a b} at offset 5; fields are {name} or {name!raw}, and {{ and }} are literal braces (write ${home.replace("{", "{{").replace("}", "}}")} for bash's ${home}).`,
    );
    expect(() => new ShellFunction("echo }")).toThrow(ConduitError);
    expect(() => new ShellFunction("")).toThrow('ShellFunction needs a command, got ""');
    expect(() => new ShellFunction("true", { walltime: -1 })).toThrow(
      "ShellFunction option walltime must be a positive number of seconds, got -1.",
    );
    expect(new ShellFunction(`echo $${"{{HOME}}"} {x}`).fields).toEqual(["x"]);
  });
});
