/**
 * Which program starts a UEP (seed "Advanced Environment Customization"): a
 * wrapper script named conduit-endpoint on the PATH user_environment.yaml
 * sets runs first (it writes a marker, then execs the real program) and the
 * UEP it starts runs tasks; without one the endpoint's own program runs; the
 * MEP's log names the program either way. Then the lookup itself, on real
 * directories: order, executability, this package's own bin, and PATH entries
 * another account could write (refused for multi-user endpoints, warned about
 * otherwise).
 */
import { randomUUID } from "node:crypto";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { UepProcess } from "../src/manager/uep-process.js";
import { findUepProgram, UnsafeUepPathError } from "../src/manager/uep-program.js";
import type { UepBootstrap } from "../src/user-endpoint/bootstrap-types.js";
import { readLog, runCli, startMep } from "./cli.helpers.js";
import {
  configuredEndpoint,
  queueTasks,
  sendCommand,
  startUepCommand,
  tapResults,
  useServiceAndBroker,
} from "./manager.helpers.js";

const context = useServiceAndBroker("uep-program-test");
const OWN_BIN = fileURLToPath(new URL("../bin/conduit-endpoint.js", import.meta.url));
/** The built CLI the MEP runs (the test imports src/, the MEP runs dist/). */
const CLI_MAIN = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));
const ME = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, uname: "tester" };
const OTHER_UID = 54_321;

/** A new 0700 directory (safe: only its owner writes it) under the system temp dir. */
function safeDir(): string {
  return mkdtempSync(join(tmpdir(), "conduit-uep-path-"));
}

/** An executable `conduit-endpoint` in `dir` with `body` after the shebang. */
function writeProgram(dir: string, body: string, mode = 0o755): string {
  const file = join(dir, "conduit-endpoint");
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, mode);
  return file;
}

/** Runs a task on a UEP of a new endpoint with `userEnvironment`; returns the MEP log and the UEP's name. */
async function runOneTask(name: string, userEnvironment?: string): Promise<{ log: string; uepName: string }> {
  const endpoint = await configuredEndpoint(context.service, name);
  if (userEnvironment) writeFileSync(join(endpoint.dir, "user_environment.yaml"), userEnvironment);
  const mep = await startMep(name, endpoint.env);
  const results = await tapResults(context.broker, mep.endpointId);
  const cmd = startUepCommand(mep);
  const [taskId] = await queueTasks(context.broker, cmd, 1);
  await sendCommand(context.broker, cmd, mep.endpointId);
  await expect.poll(() => results.length, { timeout: 30_000, interval: 200 }).toBe(1);
  expect(results[0]).toMatchObject({ taskId, state: "success" });
  expect((await runCli(["stop", name], endpoint.env)).code).toBe(0);
  return { log: readLog(endpoint.log), uepName: cmd.uepName };
}

describe("the program a UEP starts through", () => {
  it("is the conduit-endpoint wrapper on the PATH user_environment.yaml sets; it runs first and its UEP runs tasks", async () => {
    const adminScripts = safeDir();
    const marker = join(adminScripts, "marker");
    // As the seed's admin wrapper: do something first, then hand over with exec.
    const wrapper = writeProgram(
      adminScripts,
      `echo "wrapper ran: $*" > ${marker}\nexport PATH=/usr/local/bin:/usr/bin:/bin\nexec "${process.execPath}" "${CLI_MAIN}" "$@"`,
    );
    const { log, uepName } = await runOneTask("wrapped", `PATH: ${adminScripts}:/usr/local/bin:/usr/bin:/bin\n`);
    expect(readFileSync(marker, "utf8")).toBe(`wrapper ran: _start-user-endpoint ${uepName}\n`);
    expect(log).toContain(`User endpoint ${uepName} runs ${wrapper} (the conduit-endpoint on its PATH)`);
  });

  it("is the endpoint's own program when no conduit-endpoint is on that PATH; a single-user endpoint warns of an open entry", async () => {
    const open = safeDir();
    // Anyone could put a program here; a single-user endpoint (its UEPs run as itself) warns and goes on.
    chmodSync(open, 0o777);
    // Not executable: as for a shell, it does not count.
    writeProgram(open, "exit 99", 0o644);
    const { log, uepName } = await runOneTask("fallback", `PATH: ${open}:/usr/bin:/bin\n`);
    expect(log).toContain(
      `User endpoint ${uepName} runs this endpoint's own program (${process.execPath} ${CLI_MAIN})`,
    );
    expect(log).toMatch(
      new RegExp(
        `"level":40,.*"name":"MEP","msg":"The PATH entry ${open} is writable by every user, so another account`,
      ),
    );
  });

  it("is refused, before anything starts, for a UEP run as a mapped user whose PATH has an entry others can write", () => {
    const open = safeDir();
    chmodSync(open, 0o777);
    const home = safeDir();
    const uepName = `uep.${randomUUID()}.${randomUUID()}`;
    const user = { uname: "nobody", uid: 65_534, gid: 65_534, groups: [], gecos: "", shell: "/bin/sh", dir: home };
    expect(() =>
      UepProcess.spawn({
        bootstrap: { uepName } as UepBootstrap,
        userDir: home,
        env: { PATH: `${open}:/usr/bin:/bin` },
        runAs: user,
      }),
    ).toThrow(
      `The PATH entry ${open} is writable by every user, so another account could put a conduit-endpoint there that runs as nobody;`,
    );
    expect(existsSync(join(home, ".conduit"))).toBe(false);
  });
});

describe("findUepProgram", () => {
  it("takes the first executable conduit-endpoint in PATH order, skipping relative and missing entries", () => {
    const [a, b, c] = [safeDir(), safeDir(), safeDir()];
    writeProgram(a, "exit 0", 0o644);
    const inB = writeProgram(b, "exit 0");
    writeProgram(c, "exit 0");
    const found = findUepProgram(`relative/bin::${join(a, "missing")}:${a}:${b}:${c}`, ME, { strict: true });
    expect(found).toEqual({
      wrapper: inB,
      description: `${inB} (the conduit-endpoint on its PATH)`,
      warnings: [],
    });
  });

  it("runs the endpoint's own program directly when the one found is this package's bin (npx, node_modules/.bin)", () => {
    const bin = safeDir();
    symlinkSync(OWN_BIN, join(bin, "conduit-endpoint"));
    expect(findUepProgram(`${bin}:/usr/bin`, ME, { strict: true }).wrapper).toBeUndefined();
    expect(findUepProgram(undefined, ME, { strict: true }).wrapper).toBeUndefined();
  });

  it("refuses, for a multi-user endpoint, a PATH entry before the program that anyone may write", () => {
    const open = safeDir();
    chmodSync(open, 0o777);
    const admin = safeDir();
    writeProgram(admin, "exit 0");
    const attempt = () => findUepProgram(`${open}:${admin}`, ME, { strict: true });
    expect(attempt).toThrow(UnsafeUepPathError);
    expect(attempt).toThrow(
      `The PATH entry ${open} is writable by every user, so another account could put a conduit-endpoint there that runs as tester; remove that entry from the PATH (user_environment.yaml or the endpoint's environment) or make it writable only by root or tester (chown root, chmod go-w).`,
    );
    // A single-user endpoint warns, and still finds the program.
    const lenient = findUepProgram(`${open}:${admin}`, ME, { strict: false });
    expect(lenient.wrapper).toBe(join(admin, "conduit-endpoint"));
    expect(lenient.warnings).toEqual([expect.stringContaining(`The PATH entry ${open} is writable by every user`)]);
    // After the program, an entry is never consulted.
    expect(findUepProgram(`${admin}:${open}`, ME, { strict: true }).wrapper).toBe(join(admin, "conduit-endpoint"));
  });

  it.skipIf(ME.uid !== 0)(
    "refuses a group-writable entry, an entry owned by another account, a missing one others could create, and an unsafe program",
    () => {
      const group = safeDir();
      chmodSync(group, 0o775);
      expect(() => findUepProgram(group, ME, { strict: true })).toThrow(`${group} is writable by group`);

      const parent = safeDir();
      const foreign = join(parent, "foreign");
      mkdirSync(foreign, { mode: 0o755 });
      chownSync(foreign, OTHER_UID, OTHER_UID);
      expect(() => findUepProgram(foreign, ME, { strict: true })).toThrow(`${foreign} is owned by uid ${OTHER_UID}`);
      // Inside it, too: its owner could rename what is there.
      const inner = join(foreign, "bin");
      mkdirSync(inner);
      expect(() => findUepProgram(inner, ME, { strict: true })).toThrow(
        `${inner} is inside ${foreign}, which is owned by uid ${OTHER_UID}`,
      );

      const open = safeDir();
      chmodSync(open, 0o1777);
      const missing = join(open, "not-yet");
      expect(() => findUepProgram(missing, ME, { strict: true })).toThrow(
        `${missing} does not exist and ${open} is writable by every user`,
      );
      // A sticky parent is fine for a directory that exists in it and is the user's own.
      const mine = join(open, "mine");
      mkdirSync(mine, { mode: 0o755 });
      const program = writeProgram(mine, "exit 0");
      expect(findUepProgram(mine, ME, { strict: true }).wrapper).toBe(program);
      // The program itself must be the user's or root's, writable only by them.
      chmodSync(program, 0o777);
      expect(() => findUepProgram(mine, ME, { strict: true })).toThrow(`${program} is writable by every user`);
      chmodSync(program, 0o755);
      chownSync(program, OTHER_UID, OTHER_UID);
      expect(() => findUepProgram(mine, ME, { strict: true })).toThrow(`${program} is owned by uid ${OTHER_UID}`);
    },
  );

  it("follows links: a safe PATH entry linking into a directory anyone may write is refused", () => {
    const open = safeDir();
    chmodSync(open, 0o777);
    const program = writeProgram(open, "exit 0");
    const links = safeDir();
    symlinkSync(open, join(links, "bin"));
    expect(() => findUepProgram(join(links, "bin"), ME, { strict: true })).toThrow(
      `The PATH entry ${join(links, "bin")} is writable by every user`,
    );
    const fileLinks = safeDir();
    symlinkSync(program, join(fileLinks, "conduit-endpoint"));
    expect(() => findUepProgram(fileLinks, ME, { strict: true })).toThrow(`${open}, where`);
    expect(existsSync(program)).toBe(true);
  });
});
