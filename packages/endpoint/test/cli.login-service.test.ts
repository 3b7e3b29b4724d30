/**
 * The logins end to end against the real service (in process, PGlite, its
 * own RabbitMQ vhost) and its OpenID provider: `conduit-endpoint start` under
 * a pseudo-terminal shows the link; the test follows it over HTTP, submits
 * the login form of a local account, reads the code from the page and types
 * it in; the endpoint starts, and the service records that account as its
 * owner (not admin@localhost). A later start uses the cached refresh token
 * without a terminal. The SDK's first call logs in the same way, and the
 * function it registers is that account's; refused later by an authentication
 * policy's timeout (the service's clock moved ahead), it shows why, logs in
 * again on the terminal (`prompt=login`) and its submit is retried and goes
 * through; client credentials are checked
 * through both variable pairs; `login --device`, a refresh (the refresh
 * token rotated) and `logout` (the refresh token revoked) against the
 * provider itself.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { CachedLogin } from "@conduit/protocol";
import type { RunningService } from "@conduit/service";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createVhost } from "../../../scripts/local-stack.mjs";
import { Browser, codeOnPage, formAction, hiddenInputs, signIn } from "../../service/test/helpers/oidc-flows.js";
import { CLI, cleanupProcesses, runCli, startMep, tempUserDir } from "./cli.helpers.js";
import { inPty, killPtys } from "./pty.helpers.js";

const ALICE = "alice@example.edu";
const ALICE_PASSWORD = "correct horse battery staple";
const BOB = "bob@example.edu";
const BOB_PASSWORD = "another long password";
const SERVICE_CLI = fileURLToPath(new URL("../../service/bin/conduit-service.js", import.meta.url));
const LINK = /Please authenticate with Conduit here:\r?\n-+\r?\n(\S+)\r?\n-+/;

let service: RunningService;
/** How far the service's clock is ahead of this machine's (an authentication policy's timeout is judged on it). */
let clockAhead = 0;
const disposers: Array<() => Promise<void>> = [];

beforeAll(async () => {
  const { startService } = await import("@conduit/service");
  const vhost = await createVhost();
  disposers.push(() => vhost.dispose());
  const dataDir = mkdtempSync(join(tmpdir(), "conduit-svc-"));
  disposers.push(async () => rmSync(dataDir, { recursive: true, force: true }));
  service = await startService({
    port: 0,
    dataDir,
    writeCredentials: false,
    amqpUrl: vhost.url,
    logLevel: "silent",
    clock: () => Date.now() + clockAhead,
  });
  disposers.push(() => service.close());
  for (const [username, password] of [
    [ALICE, ALICE_PASSWORD],
    [BOB, BOB_PASSWORD],
  ] as const) {
    const added = await serviceCli(["user", "add", username, "--password-stdin"], `${password}\n`);
    expect(added.code, added.stderr).toBe(0);
  }
}, 120_000);

afterEach(async () => {
  clockAhead = 0;
  killPtys();
  await cleanupProcesses();
});

afterAll(async () => {
  for (const dispose of disposers.reverse()) await dispose();
});

/** `conduit-service ARGS` as the local admin, with `input` on stdin. */
async function serviceCli(
  args: string[],
  input = "",
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env = { ...process.env, CONDUIT_SERVICE_URL: service.url, CONDUIT_TOKEN: service.adminToken };
  const child = spawn(process.execPath, [SERVICE_CLI, ...args], { env, stdio: ["pipe", "pipe", "pipe"] });
  child.stdin.end(input);
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

function bareEnv(userDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, CONDUIT_USER_DIR: userDir, CONDUIT_SERVICE_URL: service.url };
  for (const name of Object.keys(env)) {
    if (/^(CONDUIT_TOKEN|CONDUIT_CLIENT_|GLOBUS_COMPUTE_CLIENT_)/.test(name)) delete env[name];
  }
  return env;
}

/** What a person does with the printed link: sign in on the service's page and read the code it shows. */
async function codeFor(link: string, username: string, password: string): Promise<string> {
  const landed = await signIn(new Browser(service.url), link, username, password);
  expect(landed.status, landed.text).toBe(200);
  return codeOnPage(landed.text);
}

async function aliceId(): Promise<string> {
  const alice = await service.store.findIdentityByUsername(ALICE);
  if (alice === undefined) throw new Error("alice is missing");
  return alice.id;
}

describe("logging in to the real service", () => {
  it("start on a terminal: link, login form, code typed; the endpoint is alice's, and a later start needs no terminal", async () => {
    const userDir = tempUserDir();
    const env = bareEnv(userDir);
    expect((await runCli(["configure", "ep"], env)).code).toBe(0);
    const run = inPty([process.execPath, CLI, "start", "ep"], env);
    const link = (await run.waitFor(LINK))[1] as string;
    await run.waitFor(/Enter the resulting Authorization Code here: /);
    run.type(await codeFor(link, ALICE, ALICE_PASSWORD));
    const endpointId = (await run.waitFor(/>>> Endpoint ID: ([0-9a-f-]{36}) <<</))[1] as string;
    const endpoint = await service.store.getEndpoint(endpointId);
    expect(endpoint?.ownerId).toBe(await aliceId());
    expect(endpoint?.ownerUsername).toBe(ALICE);
    expect((await runCli(["stop", "ep"], env)).code).toBe(0);
    expect(await run.exited).toBe(0);

    const whoami = await runCli(["whoami"], env);
    expect(whoami.stdout).toMatch(new RegExp(`^${ALICE.replaceAll(".", "\\.")} \\(${await aliceId()}\\) at `));
    // No terminal now: the cached login (its refresh token, when the access token expires) is enough.
    const again = await startMep("ep", env);
    expect(again.endpointId).toBe(endpointId);
    expect((await runCli(["stop", "ep"], env)).code).toBe(0);
    expect((await again.exited).code).toBe(0);
  });

  it("an SDK script's first call logs in on a terminal, and registers the function as alice's", async () => {
    const userDir = mkdtempSync(join(tmpdir(), "conduit-sdk-e2e-"));
    disposers.push(async () => rmSync(userDir, { recursive: true, force: true }));
    const script = [
      'import { Client } from "@conduit/sdk";',
      "const id = await new Client().registerFunction(function double(x) { return 2 * x; });",
      'console.log("function: " + id);',
    ].join(" ");
    const run = inPty([process.execPath, "--input-type=module", "-e", script], bareEnv(userDir));
    const link = (await run.waitFor(LINK))[1] as string;
    await run.waitFor(/Enter the resulting Authorization Code here: /);
    run.type(await codeFor(link, ALICE, ALICE_PASSWORD));
    const functionId = (await run.waitFor(/function: ([0-9a-f-]{36})/))[1] as string;
    expect(await run.exited).toBe(0);
    expect((await service.store.getFunction(functionId))?.ownerId).toBe(await aliceId());
  });

  it("an SDK script refused by a policy's timeout logs in again on the terminal, showing why, and its retried submit goes through", async () => {
    const admin = async (path: string, body: unknown) => {
      const r = await fetch(`${service.url}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${service.adminToken}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      expect(r.status).toBe(201);
      return ((await r.json()) as { id: string }).id;
    };
    const projectId = await admin("/v1/projects", { display_name: "Relogin" });
    const policyId = await admin("/v1/auth_policies", {
      project_id: projectId,
      display_name: "Fresh logins",
      authentication_assurance_timeout: 120,
    });
    const userDir = mkdtempSync(join(tmpdir(), "conduit-sdk-relogin-"));
    disposers.push(async () => rmSync(userDir, { recursive: true, force: true }));
    const script = [
      'import { Client } from "@conduit/sdk";',
      "const c = new Client();",
      `const { endpoint_id } = await c.registerEndpoint({ name: "guarded", authentication_policy: "${policyId}" });`,
      'const fn = await c.registerFunction({ strategy: "conduit.SourceCode", data: "(x) => x" });',
      'console.log("registered");',
      // The login's readline paused stdin: resume it for the test's go-ahead, then leave it paused again.
      'await new Promise((resolve) => process.stdin.resume().once("data", resolve)); process.stdin.pause();',
      'const args = { strategy: "conduit.JSONData", data: "[1]" };',
      "const done = await c.submit(endpoint_id, { tasks: [{ task_id: crypto.randomUUID(), function_id: fn, args }] });",
      'console.log("submitted: " + done.task_ids.length);',
    ].join(" ");
    const run = inPty([process.execPath, "--input-type=module", "-e", script], bareEnv(userDir));
    run.type(await codeFor((await run.waitFor(LINK))[1] as string, ALICE, ALICE_PASSWORD));
    await run.waitFor(/registered/);
    clockAhead += 181_000;
    run.type("go");
    const again = await run.waitFor(
      /registered[\s\S]*?(Authentication policy "Fresh logins".*)\r?\nPlease authenticate with Conduit here:\r?\n-+\r?\n(\S+)\r?\n-+/,
    );
    expect(again[1]).toContain("needs a login within the last 120 seconds");
    expect(new URL(again[2] as string).searchParams.get("prompt")).toBe("login");
    run.type(await codeFor(again[2] as string, ALICE, ALICE_PASSWORD));
    await run.waitFor(/submitted: 1/);
    expect(await run.exited).toBe(0);
  });

  it("client credentials through either variable pair: the endpoint is the client identity's", async () => {
    const created = await serviceCli(["client", "create", "--name", "ci-bot", "--owner", ALICE]);
    expect(created.code, created.stderr).toBe(0);
    const [, clientId, secret] = created.stdout.split("\n") as [string, string, string];
    const client = { client_id: clientId };
    const userDir = tempUserDir();
    const seen: string[] = [];
    for (const [id, key] of [
      ["CONDUIT_CLIENT_ID", "CONDUIT_CLIENT_SECRET"],
      ["GLOBUS_COMPUTE_CLIENT_ID", "GLOBUS_COMPUTE_CLIENT_SECRET"],
    ]) {
      const whoami = await runCli(["whoami"], { ...bareEnv(userDir), [id]: client.client_id, [key]: secret });
      // The client identity's id is its client id.
      const line = new RegExp(`^(\\S+@clients\\.conduit) \\(${client.client_id}\\) at \\S+, from ${id} and ${key}\\n$`);
      seen.push(line.exec(whoami.stdout)?.[1] ?? `no match: ${whoami.stdout}${whoami.stderr}`);
    }
    expect(seen).toEqual([`${clientId}@clients.conduit`, `${clientId}@clients.conduit`]);
    const wrong = await runCli(["whoami"], {
      ...bareEnv(userDir),
      CONDUIT_CLIENT_ID: client.client_id,
      CONDUIT_CLIENT_SECRET: "nope",
    });
    expect(wrong.stderr).toMatch(
      /^Error: The Conduit service at \S+ refused the client credentials in CONDUIT_CLIENT_ID and CONDUIT_CLIENT_SECRET \(invalid_client/,
    );

    const env = { ...bareEnv(userDir), CONDUIT_CLIENT_ID: client.client_id, CONDUIT_CLIENT_SECRET: secret };
    expect((await runCli(["configure", "bot-ep"], env)).code).toBe(0);
    const mep = await startMep("bot-ep", env);
    const endpoint = await service.store.getEndpoint(mep.endpointId);
    expect(endpoint?.ownerId).toBe(client.client_id);
    expect(endpoint?.ownerUsername).toBe(seen[0]);
    expect((await runCli(["stop", "bot-ep"], env)).code).toBe(0);
    expect((await mep.exited).code).toBe(0);
  });

  it("login --device, a refresh with the rotated refresh token, and logout revoking it", async () => {
    const userDir = tempUserDir();
    const env = bareEnv(userDir);
    const login = inPty([process.execPath, CLI, "login", "--device"], env);
    const userCode = (await login.waitFor(/enter the code (\S+) \(it expires/))[1] as string;
    // What a person does on another device: the verification page, the code, then the login form.
    const browser = new Browser(service.url);
    const input = await browser.follow(`${service.url}/oidc/device`);
    const confirm = await browser.request(formAction(input.text), {
      form: { ...hiddenInputs(input.text), user_code: userCode },
    });
    const toLogin = await browser.request(formAction(confirm.text), { form: hiddenInputs(confirm.text) });
    const form = await browser.follow(toLogin.location ?? "", toLogin);
    const posted = await browser.request(formAction(form.text), { form: { username: BOB, password: BOB_PASSWORD } });
    expect((await browser.follow(posted.location ?? "", posted)).text).toContain("Device signed in");
    await login.waitFor(/Logged in to \S+ as bob@example\.edu;/);
    expect(await login.exited).toBe(0);

    // The access token expires: the next use refreshes it, and the service rotates the refresh token.
    const file = join(userDir, "tokens.json");
    const cached = () =>
      (JSON.parse(readFileSync(file, "utf8")) as { logins: Record<string, CachedLogin> }).logins[
        service.url
      ] as CachedLogin;
    const first = cached();
    writeFileSync(file, JSON.stringify({ version: 1, logins: { [service.url]: { ...first, expires_at: 0 } } }));
    expect((await runCli(["whoami"], env)).stdout).toMatch(/^bob@example\.edu /);
    const second = cached();
    expect(second.refresh_token).not.toBe(first.refresh_token);
    expect(second.access_token).not.toBe(first.access_token);

    expect((await runCli(["logout"], env)).stdout).toMatch(/^Logged out of /);
    const reuse = await fetch(`${service.url}/oidc/token`, {
      method: "POST",
      body: new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: second.refresh_token as string,
        client_id: "conduit-cli",
      }),
    });
    expect(reuse.status).toBe(400);
    expect(((await reuse.json()) as { error: string }).error).toBe("invalid_grant");
  });
});
