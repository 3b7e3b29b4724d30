/**
 * The SDK's logins: `conduit login --device | whoami | logout` (the SDK's
 * bin), and a Client's first call without credentials on a terminal (a
 * pseudo-terminal from `script`): the link on stderr, the code read from
 * stdin, the login cached for the next run. Without a terminal, that first
 * call fails at once. Against the fake OAuth provider of the protocol tests.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { inPty, killPtys } from "../../endpoint/test/pty.helpers.js";
import { codeFromPage, type FakeOAuth, startFakeOAuth } from "../../protocol/test/fake-oauth.helpers.js";

const BIN = fileURLToPath(new URL("../bin/conduit.js", import.meta.url));
const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
/** A script whose first SDK call needs credentials. */
const WHOAMI_SCRIPT = `import { Client } from "@conduit/sdk"; console.log("me: " + (await new Client().whoami()).username);`;

let fake: FakeOAuth;
const dirs: string[] = [];

beforeAll(async () => {
  fake = await startFakeOAuth();
});
afterAll(async () => {
  await fake.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
afterEach(killPtys);

function bareEnv(): NodeJS.ProcessEnv {
  const userDir = mkdtempSync(join(tmpdir(), "conduit-sdk-login-"));
  dirs.push(userDir);
  const env: NodeJS.ProcessEnv = { ...process.env, CONDUIT_USER_DIR: userDir, CONDUIT_SERVICE_URL: fake.url };
  for (const name of Object.keys(env)) {
    if (/^(CONDUIT_TOKEN|CONDUIT_CLIENT_|GLOBUS_COMPUTE_CLIENT_)/.test(name)) delete env[name];
  }
  return env;
}

function run(argv: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, argv, { env, cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    stdout += d;
  });
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
  });
  return new Promise((resolve) => child.once("close", (code) => resolve({ code, stdout, stderr })));
}

describe("npx conduit", () => {
  it("login --device prints the page and code on stderr, then whoami and logout", async () => {
    const env = bareEnv();
    fake.loginAs = "ivan@example.edu";
    const login = await run([BIN, "login", "--device"], env);
    expect(login.stderr).toContain(`${fake.url}/device`);
    expect(login.stderr).toContain("enter the code WXYZ-1234");
    expect(login.stdout).toBe(
      `Logged in to ${fake.url} as ivan@example.edu; the tokens are kept in ${join(env.CONDUIT_USER_DIR as string, "tokens.json")}.\n`,
    );
    expect((await run([BIN, "whoami"], env)).stdout).toMatch(/^ivan@example\.edu \(\S+\) at /);
    expect((await run([BIN, "logout"], env)).stdout).toMatch(/^Logged out of /);
    const after = await run([BIN, "whoami"], env);
    expect(after.code).toBe(1);
    expect(after.stderr).toBe(
      `Error: No credentials for the Conduit service at ${fake.url}: run \`npx conduit login\` on a terminal, or set CONDUIT_CLIENT_ID and CONDUIT_CLIENT_SECRET to a client identity's id and secret.\n`,
    );
  });

  it("refuses an unknown command or option with one sentence", async () => {
    const env = bareEnv();
    expect((await run([BIN, "logon"], env)).stderr).toBe(
      "Error: Unknown command logon; use login, logout or whoami.\n",
    );
    expect((await run([BIN, "whoami", "--device"], env)).stderr).toBe(
      "Error: conduit whoami does not take --device; see conduit --help.\n",
    );
  });
});

describe("a Client's first call without credentials", () => {
  it("on a terminal logs in (link, code typed), and the next run uses the cached login without a terminal", async () => {
    const env = bareEnv();
    fake.loginAs = "judy@example.edu";
    const script = inPty([process.execPath, "--input-type=module", "-e", WHOAMI_SCRIPT], env);
    const link = (await script.waitFor(/Please authenticate with Conduit here:\r?\n-+\r?\n(\S+)\r?\n/))[1] as string;
    await script.waitFor(/Enter the resulting Authorization Code here: /);
    script.type(await codeFromPage(link));
    await script.waitFor(/me: judy@example\.edu/);
    expect(await script.exited).toBe(0);

    const again = await run(["--input-type=module", "-e", WHOAMI_SCRIPT], env);
    expect(again.stdout).toBe("me: judy@example.edu\n");
    expect(again.stderr).toBe("");
  });

  it("without a terminal fails at once, naming the two ways out", async () => {
    const result = await run(["--input-type=module", "-e", WHOAMI_SCRIPT], bareEnv());
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `No credentials for the Conduit service at ${fake.url}: run \`npx conduit login\` on a terminal, or set CONDUIT_CLIENT_ID and CONDUIT_CLIENT_SECRET`,
    );
  });
});
