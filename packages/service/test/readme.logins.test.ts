import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningService } from "../src/index.js";
import { createTempDir } from "./helpers/databases.js";
import { codeLogin, jwtHeader, tokenRequest } from "./helpers/oidc-flows.js";
import { type Ran, runToEnd } from "./helpers/run.js";
import { startTestService } from "./helpers/service.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const SECTION = "### Logins, client identities and signing keys";
const ALICE_PASSWORD = "alice's password from the README test";

/** The command lines of the section's sh blocks (continuations joined, comments kept). */
function readmeCommands(): string[] {
  const readme = readFileSync(`${ROOT}README.md`, "utf8");
  const start = readme.indexOf(SECTION);
  if (start < 0) throw new Error(`README.md has no "${SECTION}" section; this test runs that section's commands.`);
  const end = readme.indexOf("\n### ", start + SECTION.length);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const lines: string[] = [];
  for (const block of section.matchAll(/```sh\n([\s\S]*?)```/g)) {
    lines.push(...block[1].replaceAll("\\\n", " ").split("\n"));
  }
  return lines.filter((line) => line.includes("conduit-service"));
}

/** The one line that matches, as the shell will run it: `[--opt value]` filled in. */
function readmeCommand(commands: string[], pattern: RegExp, what: string): string {
  const line = commands.find((c) => pattern.test(c));
  if (line === undefined) {
    throw new Error(
      `README.md's "${SECTION}" no longer shows ${what}; show it there again, or change this test with it.`,
    );
  }
  return line.replace(/\[([^\]]*)\]/g, "$1");
}

describe("the README's login and client-identity commands", () => {
  const disposers: Array<() => Promise<void>> = [];
  let service: RunningService;
  let userDir: string;
  const commands = readmeCommands();

  beforeAll(async () => {
    const started = await startTestService();
    disposers.push(started.dispose);
    service = started.value;
    const dir = await createTempDir();
    disposers.push(() => dir.dispose());
    userDir = dir.value;
  }, 60_000);

  afterAll(async () => {
    for (const dispose of disposers.reverse()) await dispose();
  });

  function sh(line: string): Promise<Ran> {
    const env = {
      ...process.env,
      ALICE_PASSWORD,
      CONDUIT_USER_DIR: userDir,
      CONDUIT_SERVICE_URL: service.url,
      CONDUIT_TOKEN: service.adminToken,
    };
    return runToEnd("sh", ["-c", line], { cwd: ROOT, env });
  }

  async function whoami(token: string): Promise<{ username: string }> {
    const r = await fetch(`${service.url}/v1/whoami`, { headers: { authorization: `Bearer ${token}` } });
    expect(r.status).toBe(200);
    return (await r.json()) as { username: string };
  }

  let aliceName: string;
  let aliceToken: string;

  it("user add … --password-stdin makes an account that logs in with that password", async () => {
    const line = readmeCommand(
      commands,
      /\| npx conduit-service user add \S+ --password-stdin/,
      "`user add … --password-stdin` fed by printf",
    );
    aliceName = /user add (\S+)/.exec(line)?.[1] ?? "";
    const ran = await sh(line);
    expect(ran.stderr).toBe("");
    expect(ran.code).toBe(0);
    expect(ran.stdout).not.toContain(ALICE_PASSWORD);
    aliceToken = (await codeLogin(service.url, aliceName, ALICE_PASSWORD)).access_token;
    expect((await whoami(aliceToken)).username).toBe(aliceName);
  });

  let clientName: string;
  let clientId: string;
  let clientSecret: string;

  it("client create prints the client id and secret once; they give a token acting as <client_id>@clients.conduit", async () => {
    const line = readmeCommand(commands, /^npx conduit-service client create /, "`client create`");
    clientName = /--name (\S+)/.exec(line)?.[1] ?? "";
    expect(clientName, `the README's client create has no --name: ${line}`).not.toBe("");
    // The optional owner, filled in, is the user the README adds above.
    expect(line).toContain(`--owner ${aliceName}`);
    const ran = await sh(line);
    expect(ran.stderr).toBe("");
    expect(ran.code).toBe(0);
    clientId = /^export CONDUIT_CLIENT_ID=(.+)$/m.exec(ran.stdout)?.[1] ?? "";
    clientSecret = /^export CONDUIT_CLIENT_SECRET=(.+)$/m.exec(ran.stdout)?.[1] ?? "";
    expect(clientId, ran.stdout).toMatch(/^[0-9a-f-]{36}$/);
    expect(clientSecret.length, ran.stdout).toBeGreaterThan(20);
    const granted = await tokenRequest(
      service.url,
      { grant_type: "client_credentials", scope: "conduit" },
      { id: clientId, secret: clientSecret },
    );
    expect(granted.status, JSON.stringify(granted.body)).toBe(200);
    expect((await whoami(String(granted.body.access_token))).username).toBe(`${clientId}@clients.conduit`);
  });

  // "Once": no later command shows the secret again.
  it("client list shows the client, its id and owner, never its secret", async () => {
    const ran = await sh(readmeCommand(commands, /^npx conduit-service client list\b/, "`client list`"));
    expect(ran.stderr).toBe("");
    expect(ran.code).toBe(0);
    const row = [clientName, clientId, aliceName].map((c) => c.replaceAll(".", "\\.")).join(" +\\| ");
    expect(ran.stdout).toMatch(new RegExp(row));
    expect(ran.stdout).not.toContain(clientSecret);
  });

  it("keys rotate signs with a new key; the old one still verifies the tokens it signed", async () => {
    const line = readmeCommand(commands, /^npx conduit-service keys rotate\b/, "`keys rotate`");
    const oldKid = String(jwtHeader(aliceToken).kid);
    const ran = await sh(line);
    expect(ran.stderr).toBe("");
    expect(ran.code).toBe(0);
    const printed = /^New signing key (\S+); (\S+) verifies until \S+Z\.\n$/.exec(ran.stdout);
    expect(printed, ran.stdout).not.toBeNull();
    const [, newKid, retired] = printed ?? [];
    expect(retired).toBe(oldKid);
    expect(newKid).not.toBe(oldKid);
    expect((await whoami(aliceToken)).username).toBe(aliceName);
    const fresh = await tokenRequest(
      service.url,
      { grant_type: "client_credentials", scope: "conduit" },
      { id: clientId, secret: clientSecret },
    );
    expect(jwtHeader(String(fresh.body.access_token)).kid).toBe(newKid);
  });
});
