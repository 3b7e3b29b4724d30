/**
 * `conduit-endpoint login | logout | whoami`, and `start` without
 * credentials: on a terminal (a pseudo-terminal from `script`) it shows the
 * link and asks for the code; without one it fails at once with the two ways
 * out; a later start uses the cached login with no prompt. Against the fake
 * OAuth provider of the protocol tests; the real service's login is the e2e
 * test's.
 */
import { statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { codeFromPage, type FakeOAuth, startFakeOAuth } from "../../protocol/test/fake-oauth.helpers.js";
import { CLI, runCli, tempUserDir } from "./cli.helpers.js";
import { inPty, killPtys } from "./pty.helpers.js";

let fake: FakeOAuth;

beforeAll(async () => {
  fake = await startFakeOAuth();
});
afterAll(() => fake.close());
afterEach(killPtys);

/** No credentials of any kind: only the user dir and the service. */
function bareEnv(userDir: string, serviceUrl: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, CONDUIT_USER_DIR: userDir, CONDUIT_SERVICE_URL: serviceUrl };
  for (const name of Object.keys(env)) {
    if (/^(CONDUIT_TOKEN|CONDUIT_CLIENT_|GLOBUS_COMPUTE_CLIENT_)/.test(name)) delete env[name];
  }
  return env;
}

const LINK = /Please authenticate with Conduit here:\r?\n-+\r?\n(\S+)\r?\n-+/;

describe("conduit-endpoint start without credentials", () => {
  it("without a terminal fails at once, naming the two ways out", async () => {
    const userDir = tempUserDir();
    const env = bareEnv(userDir, fake.url);
    expect((await runCli(["configure", "ep"], env)).code).toBe(0);
    const started = await runCli(["start", "ep"], env);
    expect(started.code).toBe(1);
    expect(started.stderr).toBe(
      `Error: No credentials for the Conduit service at ${fake.url}: run \`conduit-endpoint login\` on a terminal, or set CONDUIT_CLIENT_ID and CONDUIT_CLIENT_SECRET to a client identity's id and secret.\n`,
    );
  });

  it("on a terminal asks for a login first, and a later start without a terminal uses it", async () => {
    const userDir = tempUserDir();
    const env = bareEnv(userDir, fake.url);
    expect((await runCli(["configure", "ep"], env)).code).toBe(0);
    fake.loginAs = "frank@example.edu";
    const run = inPty([process.execPath, CLI, "start", "ep"], env);
    const link = (await run.waitFor(LINK))[1] as string;
    await run.waitFor(/Enter the resulting Authorization Code here: /);
    run.type(await codeFromPage(link));
    // The fake has no /v1/endpoints: getting as far as registering proves the login was accepted and used.
    await run.waitFor(/refused to register endpoint ep \(HTTP 404\)/);
    expect(await run.exited).toBe(1);
    expect(statSync(join(userDir, "tokens.json")).mode & 0o777).toBe(0o600);

    const again = await runCli(["start", "ep"], env);
    expect(again.stderr).toMatch(/refused to register endpoint ep \(HTTP 404\)/);
    expect(again.stderr).not.toMatch(/No credentials/);
    const whoami = await runCli(["whoami"], env);
    expect(whoami.stdout).toMatch(
      new RegExp(
        `^frank@example\\.edu \\(\\S+\\) at ${fake.url}, from the login cached in ${join(userDir, "tokens.json")}\\n$`,
      ),
    );
  });
});

describe("conduit-endpoint login, whoami, logout", () => {
  it("login --device, then whoami names the identity; logout forgets it", async () => {
    const userDir = tempUserDir();
    const env = bareEnv(userDir, fake.url);
    fake.loginAs = "grace@example.edu";
    // The fake approves at the first poll, which comes after its 2 s interval.
    const login = await runCli(["login", "--device"], env);
    expect(login.stdout).toContain(`${fake.url}/device`);
    expect(login.stdout).toContain("enter the code WXYZ-1234");
    expect(login.stdout).toContain(
      `Logged in to ${fake.url} as grace@example.edu; the tokens are kept in ${join(userDir, "tokens.json")}.`,
    );
    expect((await runCli(["whoami"], env)).stdout).toMatch(/^grace@example\.edu /);

    const logout = await runCli(["logout"], env);
    expect(logout.stdout).toBe(
      `Logged out of ${fake.url}: its tokens are removed from ${join(userDir, "tokens.json")}.\n`,
    );
    const after = await runCli(["whoami"], env);
    expect(after.code).toBe(1);
    expect(after.stderr).toMatch(/^Error: No credentials for the Conduit service at /);
  });

  it("login on a terminal shows the link and takes the code typed", async () => {
    const userDir = tempUserDir();
    const env = bareEnv(userDir, fake.url);
    fake.loginAs = "heidi@example.edu";
    const run = inPty([process.execPath, CLI, "login"], env);
    const link = (await run.waitFor(LINK))[1] as string;
    expect(new URL(link).searchParams.get("redirect_uri")).toBe(`${fake.url}/login/code`);
    await run.waitFor(/Enter the resulting Authorization Code here: /);
    run.type(await codeFromPage(link));
    await run.waitFor(/Logged in to \S+ as heidi@example\.edu;/);
    expect(await run.exited).toBe(0);
  });

  it("whoami with client credentials names the client identity", async () => {
    fake.clients.set("bot", { secret: "pw", username: "bot@clients" });
    const env = {
      ...bareEnv(tempUserDir(), fake.url),
      GLOBUS_COMPUTE_CLIENT_ID: "bot",
      GLOBUS_COMPUTE_CLIENT_SECRET: "pw",
    };
    const whoami = await runCli(["whoami"], env);
    expect(whoami.stdout).toMatch(
      /^bot@clients \(\S+\) at \S+, from GLOBUS_COMPUTE_CLIENT_ID and GLOBUS_COMPUTE_CLIENT_SECRET\n$/,
    );
  });
});
