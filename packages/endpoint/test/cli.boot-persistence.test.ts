/**
 * `enable-on-boot` and `disable-on-boot` through the real CLI against the
 * real service: the unit has Globus's keys and no secret, `systemd-analyze
 * verify` accepts it without a word on stderr (it exits 0 on unknown keys),
 * its environment file is 0600; every refusal is one sentence and leaves
 * nothing behind. Units go to a temp dir (`--unit-dir` or
 * CONDUIT_SYSTEMD_UNIT_DIR), never /etc/systemd/system.
 */
import { spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdirSync, readFileSync, realpathSync, statSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { cliEnv, closedServiceUrl, runCli, startMep, tempUserDir, useTestService } from "./cli.helpers.js";
import { createUser, installedCli, removeUsersAndGroups } from "./multi-user.helpers.js";

const ENDPOINT_FILES = [
  "config.yaml",
  "user_config_template.yaml.j2",
  "user_config_schema.json",
  "user_environment.yaml",
];
const BIN = fileURLToPath(new URL("../bin/conduit-endpoint.js", import.meta.url));

const context = useTestService({ afterProcesses: removeUsersAndGroups });

/** `systemd-analyze verify`: exit 0 and nothing on stderr (unknown keys are only warned about). */
function verifyUnit(path: string): void {
  const result = spawnSync("systemd-analyze", ["verify", path], { encoding: "utf8" });
  expect(result.error, "systemd-analyze must be installed (.ci/run installs it)").toBeUndefined();
  expect(result.stderr).toBe("");
  expect(result.status).toBe(0);
}

async function configured(name: string, userDir = tempUserDir()) {
  const env = { ...cliEnv(userDir, context.service), CONDUIT_SYSTEMD_UNIT_DIR: tempUserDir() };
  expect((await runCli(["configure", name], env)).code).toBe(0);
  const unitDir = env.CONDUIT_SYSTEMD_UNIT_DIR;
  return {
    userDir,
    env,
    unitDir,
    unit: join(unitDir, `conduit-endpoint-${name}.service`),
    envFile: join(userDir, name, "systemd.env"),
  };
}

function unitFor(name: string, envFile: string, user: string, bin = BIN): string {
  return `[Unit]
Description=Conduit Endpoint "${name}"
After=network.target
StartLimitIntervalSec=0

[Service]
ExecStart=${bin} start ${name}
EnvironmentFile=${envFile.replaceAll("%", "%%")}
User=${user}
Type=simple
Restart=always
RestartSec=1

[Install]
WantedBy=multi-user.target
`;
}

describe("conduit-endpoint enable-on-boot / disable-on-boot", () => {
  it("installs a 0644 unit without secrets that systemd-analyze accepts, and prints the seed's lines", async () => {
    const { userDir, env, unit, envFile } = await configured("lab");
    const { code, stdout, stderr } = await runCli(["enable-on-boot", "lab"], env);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout).toBe(
      `Systemd service installed. Run
   sudo systemctl enable conduit-endpoint-lab.service --now
to enable the service and start the endpoint.
(Its environment, with the endpoint's credentials if they came from the environment, is in ${envFile}, mode 0600.)
`,
    );
    expect(statSync(unit).mode & 0o777).toBe(0o644);
    const text = readFileSync(unit, "utf8");
    expect(text).toBe(unitFor("lab", envFile, userInfo().username));
    expect(text).not.toContain(context.service.token);
    verifyUnit(unit);

    expect(statSync(envFile).mode & 0o777).toBe(0o600);
    const vars = readFileSync(envFile, "utf8");
    expect(vars).toContain(`CONDUIT_USER_DIR='${userDir}'\n`);
    expect(vars).toContain(`CONDUIT_SERVICE_URL='${context.service.url}'\n`);
    expect(vars).toContain(`CONDUIT_TOKEN='${context.service.token}'\n`);
    // The bin's shebang is `env node`: the node that ran enable-on-boot comes first.
    expect(vars).toContain(
      `PATH='${dirname(process.execPath)}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'\n`,
    );

    // Never overwritten.
    writeFileSync(unit, "# edited by the admin\n");
    const again = await runCli(["enable-on-boot", "lab"], env);
    expect(again.code).toBe(1);
    expect(again.stdout).toBe("");
    expect(again.stderr).toBe(
      `Error: Cannot create the systemd unit ${unit}: a file with that name already exists; remove it first (conduit-endpoint disable-on-boot lab prints how).\n`,
    );
    expect(readFileSync(unit, "utf8")).toBe("# edited by the admin\n");

    const disabled = await runCli(["disable-on-boot", "lab"], env);
    expect(disabled).toEqual({
      code: 0,
      stderr: "",
      stdout: `Run the following to disable on-boot-persistence:
   systemctl stop conduit-endpoint-lab
   systemctl disable conduit-endpoint-lab
   rm ${unit}
   rm ${envFile}
`,
    });
    // It removes nothing itself.
    expect(existsSync(unit)).toBe(true);
    expect(existsSync(envFile)).toBe(true);
  });

  it("escapes systemd specifiers and takes --unit-dir over the variable", async () => {
    const base = tempUserDir();
    const userDir = join(base, "odd 100% dir");
    mkdirSync(userDir);
    const { env, envFile } = await configured("odd", userDir);
    const unitDir = tempUserDir();
    const { code, stderr } = await runCli(["enable-on-boot", "odd", "--unit-dir", unitDir], env);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const unit = join(unitDir, "conduit-endpoint-odd.service");
    expect(readFileSync(unit, "utf8")).toContain(`EnvironmentFile=${base}/odd 100%% dir/odd/systemd.env\n`);
    expect(readFileSync(unit, "utf8")).toBe(unitFor("odd", envFile, userInfo().username));
    expect(existsSync(join(env.CONDUIT_SYSTEMD_UNIT_DIR as string, "conduit-endpoint-odd.service"))).toBe(false);
    verifyUnit(unit);
  });

  it("refuses without systemd, for a running endpoint, and with credentials the service refuses: one sentence, nothing written", async () => {
    const { env, unit, envFile } = await configured("ref");
    const cases: Array<[NodeJS.ProcessEnv, string]> = [
      [
        { ...env, CONDUIT_SYSTEMD_UNIT_DIR: "/nonexistent/systemd/system" },
        `Error: Systemd not found (no /nonexistent/systemd/system): on-boot persistence is only implemented for systemd; see the README's "Installing as a service" for machines without it.\n`,
      ],
      [
        { ...env, CONDUIT_TOKEN: "not-a-token" },
        `Error: The Conduit service at ${context.service.url} refuses the endpoint's token (HTTP 401: `,
      ],
    ];
    for (const [caseEnv, sentence] of cases) {
      const { code, stdout, stderr } = await runCli(["enable-on-boot", "ref"], caseEnv);
      expect(code).toBe(1);
      expect(stdout).toBe("");
      expect(stderr.startsWith(sentence), stderr).toBe(true);
      expect(stderr.trim().split("\n")).toHaveLength(1);
    }
    const closed = await closedServiceUrl();
    const down = await runCli(["enable-on-boot", "ref"], { ...env, CONDUIT_SERVICE_URL: closed });
    expect(down).toEqual({
      code: 1,
      stdout: "",
      stderr: `Error: Cannot reach the Conduit service at ${closed} (ECONNREFUSED) to check the endpoint's credentials; start the service or point CONDUIT_SERVICE_URL at it, then run conduit-endpoint enable-on-boot ref again.\n`,
    });

    const mep = await startMep("ref", env);
    const running = await runCli(["enable-on-boot", "ref"], env);
    expect(running).toEqual({
      code: 1,
      stdout: "",
      stderr:
        "Error: Cannot enable on-boot persistence for an endpoint that is currently running; stop it with conduit-endpoint stop ref and try again.\n",
    });
    expect((await runCli(["stop", "ref"], env)).code).toBe(0);
    await mep.exited;

    expect(existsSync(unit)).toBe(false);
    expect(existsSync(envFile)).toBe(false);
    const disabled = await runCli(["disable-on-boot", "ref"], env);
    expect(disabled).toEqual({
      code: 1,
      stdout: "",
      stderr: `Error: There does not appear to be an existing systemd unit for endpoint ref (unit file ${unit} not found); nothing to disable.\n`,
    });
  }, 60_000);

  it.runIf(process.getuid?.() === 0)(
    "prints the unit with the root hint when the unit directory is not writable",
    async () => {
      const user = createUser();
      const { userDir, env, unit, envFile } = await configured("mine");
      for (const path of [userDir, join(userDir, "mine"), ...ENDPOINT_FILES.map((f) => join(userDir, "mine", f))]) {
        chownSync(path, user.uid, user.gid);
      }
      // Not spawnSync: the service answering the credential check runs in this process.
      const cli = realpathSync(installedCli());
      const result = await runCli(["enable-on-boot", "mine"], env, { uid: user.uid, gid: user.gid, cli });
      expect(result.stderr).toMatch(
        new RegExp(
          `^Error: Cannot write the systemd unit ${unit} \\((EACCES|EPERM); do you need to be root\\?\\); run conduit-endpoint enable-on-boot mine again with sudo, or install this unit there yourself:\\n$`,
        ),
      );
      expect(result.code).toBe(1);
      expect(result.stdout).toBe(`\n${unitFor("mine", envFile, user.name, cli)}`);
      expect(existsSync(unit)).toBe(false);
      // The environment file is ready for the unit the admin installs by hand.
      expect(statSync(envFile).mode & 0o777).toBe(0o600);
      const printed = join(tempUserDir(), "conduit-endpoint-mine.service");
      writeFileSync(printed, result.stdout.slice(1));
      verifyUnit(printed);
    },
  );
});
