/**
 * Size rotation of endpoint logs: lines stay in order across `endpoint.log`,
 * `.1`, `.2` and nothing older is kept; output that a real child process
 * writes through an inherited O_APPEND descriptor (as a UEP's workers print
 * to its log) is bounded too, and keeps landing in `endpoint.log`; the MEP
 * rotates its log under the real CLI, and a bad setting is one sentence.
 */
import { type ChildProcess, fork } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, describe, expect, it } from "vitest";
import { createLogger } from "../dist/logging.js";
import { cleanupProcesses, cliEnv, runCli, startMep, startTestService, tempUserDir } from "./cli.helpers.js";
import { UepHarness } from "./user-endpoint.harness.js";

const dirs: string[] = [];
afterAll(async () => {
  await cleanupProcesses();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "conduit-logrot-"));
  dirs.push(dir);
  return dir;
}

/** The log and its backups, oldest first, and their sizes. */
function logFiles(dir: string): Array<{ name: string; size: number; text: string }> {
  return readdirSync(dir)
    .filter((n) => n.startsWith("endpoint.log"))
    .sort((a, b) => (Number(b.split(".")[2] ?? 0) || 0) - (Number(a.split(".")[2] ?? 0) || 0))
    .map((name) => ({ name, size: statSync(join(dir, name)).size, text: readFileSync(join(dir, name), "utf8") }));
}

/** A child that appends `size` bytes (lines of 100, the marker last) to its stdout (the log) each time it is told, then says so. */
function printer(logFd: number): ChildProcess {
  const script = join(tempDir(), "printer.cjs");
  writeFileSync(
    script,
    `process.on("message", (m) => {
      if (m === "exit") process.exit(0);
      const filler = m.size - m.marker.length - 1;
      require("fs").writeSync(1, ("x".repeat(99) + "\\n").repeat(Math.floor(filler / 100)) + "y".repeat(filler % 100) + m.marker + "\\n");
      process.send("done");
    });`,
  );
  return fork(script, [], { stdio: ["ignore", logFd, "inherit", "ipc"] });
}

/** Sends `message` and resolves at the child's answer; rejects if it exits first. */
function tell(child: ChildProcess, message: { size: number; marker: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`The printer exited (code ${code})`));
    child.once("exit", onExit);
    child.once("message", () => {
      child.off("exit", onExit);
      resolve();
    });
    child.send(message);
  });
}

describe("endpoint log rotation", () => {
  it("keeps the lines in order across the log and its backups, and no more backups than set", () => {
    const dir = tempDir();
    const log = createLogger({
      file: join(dir, "endpoint.log"),
      name: "MEP",
      rotation: { maxBytes: 4096, backups: 2 },
    });
    for (let i = 0; i < 500; i++) log.info(`line ${String(i).padStart(4, "0")} ${"-".repeat(40)}`);
    const files = logFiles(dir);
    expect(files.map((f) => f.name)).toEqual(["endpoint.log.2", "endpoint.log.1", "endpoint.log"]);
    const longest = Math.max(...files.flatMap((f) => f.text.split("\n").map((l) => l.length + 1)));
    for (const f of files) expect(f.size, f.name).toBeLessThan(4096 + longest);
    const numbers = files.flatMap((f) => [...f.text.matchAll(/"msg":"line (\d{4}) /g)].map((m) => Number(m[1])));
    expect(numbers.at(-1)).toBe(499);
    expect(numbers).toEqual(numbers.map((_, i) => numbers[0] + i));
    expect(statSync(join(dir, "endpoint.log.1")).mode & 0o777).toBe(0o600);
  });

  it("bounds what a child prints through an inherited descriptor, which keeps writing to endpoint.log", async () => {
    const dir = tempDir();
    const file = join(dir, "endpoint.log");
    const log = createLogger({ file, name: "UEP", rotation: { maxBytes: 64 * 1024, backups: 3 } });
    const fd = openSync(file, "a", 0o600);
    const child = printer(fd);
    closeSync(fd);
    const chunk = 10 * 1024;
    // 3 MiB in all, a line of the logger after each chunk (the size is checked at each line).
    for (let i = 0; i < 300; i++) {
      await tell(child, { size: chunk, marker: `chunk ${i}` });
      log.info(`after chunk ${i}`);
      const total = logFiles(dir).reduce((sum, f) => sum + f.size, 0);
      expect(total).toBeLessThanOrEqual(4 * (64 * 1024 + chunk + 200));
    }
    await tell(child, { size: chunk, marker: "last chunk" });
    expect(readFileSync(file, "utf8")).toContain("last chunk\n");
    expect(logFiles(dir).map((f) => f.name)).toEqual([
      "endpoint.log.3",
      "endpoint.log.2",
      "endpoint.log.1",
      "endpoint.log",
    ]);
    child.send("exit");
  }, 60_000);

  it("checks on a timer for output that no log line follows", async () => {
    const dir = tempDir();
    const file = join(dir, "endpoint.log");
    const fd = openSync(file, "a", 0o600);
    const child = printer(fd);
    closeSync(fd);
    await tell(child, { size: 100 * 1024, marker: "big" });
    // The timer starts once the write is done: a check in the middle of the child's one 100 KiB
    // write would rotate part of it (CI saw that), and the test is about the timer, not that race.
    createLogger({ file, name: "UEP", rotation: { maxBytes: 8 * 1024, backups: 1 }, checkEveryMs: 20 });
    for (let waited = 0; !existsSync(`${file}.1`); waited += 20) {
      if (waited > 10_000) throw new Error("endpoint.log was not rotated by its timer");
      await sleep(20);
    }
    for (let waited = 0; statSync(file).size > 0; waited += 20) {
      if (waited > 10_000) throw new Error("endpoint.log was not emptied after its copy");
      await sleep(20);
    }
    // 100 KiB against a limit of 8: only the last 8 KiB are kept, after a line saying so.
    const copy = readFileSync(`${file}.1`, "utf8");
    const [first] = copy.split("\n");
    expect(JSON.parse(first)).toMatchObject({
      level: 40,
      pid: process.pid,
      name: "log rotation",
      msg: expect.stringMatching(/^\d+ bytes written since the last check were dropped \(over 8192\)$/),
    });
    expect(copy.endsWith("big\n")).toBe(true);
    expect(statSync(`${file}.1`).size).toBeLessThanOrEqual(8192 + 200);
    child.send("exit");
  });

  it("bounds the log of a real UEP whose task prints 2 MB through its inherited stdout", async () => {
    const h = await new UepHarness().open();
    try {
      const noisy = h.task({
        source:
          '() => { for (let i = 0; i < 2000; i++) console.log(String(i).padStart(6, "0") + " " + "y".repeat(1000)); return 7; }',
        args: [],
      });
      await h.publish(noisy);
      const uep = h.start({
        outputToLog: true,
        env: { CONDUIT_LOG_MAX_BYTES: String(64 * 1024), CONDUIT_LOG_BACKUPS: "2" },
      });
      await expect.poll(() => h.resultOf(noisy.taskId), { timeout: 30_000, interval: 100 }).toBeDefined();
      const dir = join(h.userDir, h.uepName);
      // The UEP checks every second: wait for the check after the last line.
      await expect
        .poll(() => existsSync(join(dir, "endpoint.log.1")) && statSync(join(dir, "endpoint.log")).size < 64 * 1024, {
          timeout: 20_000,
          interval: 100,
        })
        .toBe(true);
      const files = logFiles(dir);
      expect(files.map((f) => f.name).filter((n) => n !== "endpoint.log.2")).toEqual([
        "endpoint.log.1",
        "endpoint.log",
      ]);
      for (const f of files) expect(f.size, f.name).toBeLessThanOrEqual(64 * 1024 + 64 * 1024 + 2000);
      expect(files.map((f) => f.text).join("")).toContain(`001999 ${"y".repeat(1000)}\n`);
      uep.child.kill("SIGTERM");
      expect(await uep.exit).toEqual({ code: 0, signal: null });
    } finally {
      await h.close();
    }
  }, 90_000);

  it("rotates the MEP's endpoint.log under the real CLI, and refuses a bad setting with one sentence", async () => {
    const userDir = tempUserDir();
    const bad = await runCli(["start", "rot"], { ...cliEnv(userDir), CONDUIT_LOG_MAX_BYTES: "100 MiB" });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^Error: There is no endpoint named rot/);

    const service = await startTestService();
    try {
      const env = { ...cliEnv(userDir, service), CONDUIT_LOG_MAX_BYTES: "1024", CONDUIT_LOG_BACKUPS: "1" };
      expect((await runCli(["configure", "rot"], env)).code).toBe(0);
      const refused = await runCli(["start", "rot"], { ...env, CONDUIT_LOG_MAX_BYTES: "100 MiB" });
      expect(refused).toMatchObject({
        code: 1,
        stderr:
          'Error: CONDUIT_LOG_MAX_BYTES is "100 MiB", not a whole number of at least 1024; set it to e.g. 104857600, or unset it for the default.\n',
      });
      const mep = await startMep("rot", env, ["--debug"]);
      expect((await runCli(["stop", "rot"], env)).code).toBe(0);
      expect(await mep.exited).toEqual({ code: 0, signal: null });
      const dir = join(userDir, "rot");
      const files = logFiles(dir);
      expect(files.map((f) => f.name)).toEqual(["endpoint.log.1", "endpoint.log"]);
      const longest = Math.max(...files.flatMap((f) => f.text.split("\n").map((l) => l.length + 1)));
      for (const f of files) expect(f.size, f.name).toBeLessThan(1024 + longest);
      expect(files.map((f) => f.text).join("")).toContain(`---------- Endpoint Manager ends: ${mep.endpointId}`);
    } finally {
      await service.close();
    }
  }, 120_000);
});
