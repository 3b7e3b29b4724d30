/**
 * The logins end to end against the real service (in process, PGlite, its
 * own RabbitMQ vhost) and its OpenID provider: `conduit-endpoint start` under
 * a pseudo-terminal shows the link; the test follows it over HTTP, submits
 * the login form of a local account, reads the code from the page and types
 * it in; the endpoint starts, and the service records that account as its
 * owner (not admin@localhost). A later start uses the cached refresh token
 * without a terminal. The SDK's first call logs in the same way, and the
 * function it registers is that account's; client credentials are checked
 * through both variable pairs.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RunningService } from "@conduit/service";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createVhost } from "../../../scripts/local-stack.mjs";
import { Browser, codeOnPage, signIn } from "../../service/test/helpers/oidc-flows.js";
import { CLI, cleanupProcesses, runCli, startMep, tempUserDir } from "./cli.helpers.js";
import { inPty, killPtys } from "./pty.helpers.js";

const ALICE = "alice@example.edu";
const ALICE_PASSWORD = "correct horse battery staple";
const LINK = /Please authenticate with Conduit here:\r?\n-+\r?\n(\S+)\r?\n-+/;

let service: RunningService;
const disposers: Array<() => Promise<void>> = [];

beforeAll(async () => {
  const { startService } = await import("@conduit/service");
  const vhost = await createVhost();
  disposers.push(() => vhost.dispose());
  const dataDir = mkdtempSync(join(tmpdir(), "conduit-svc-"));
  disposers.push(async () => rmSync(dataDir, { recursive: true, force: true }));
  service = await startService({ port: 0, dataDir, writeCredentials: false, amqpUrl: vhost.url, logLevel: "silent" });
  disposers.push(() => service.close());
  const created = await fetch(`${service.url}/v1/admin/identities`, {
    method: "POST",
    headers: { authorization: `Bearer ${service.adminToken}`, "content-type": "application/json" },
    body: JSON.stringify({ username: ALICE, password: ALICE_PASSWORD }),
  });
  expect(created.status, await created.text()).toBe(201);
}, 120_000);

afterEach(async () => {
  killPtys();
  await cleanupProcesses();
});

afterAll(async () => {
  for (const dispose of disposers.reverse()) await dispose();
});

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
    expect(whoami.stdout).toMatch(new RegExp(`^${ALICE.replace(".", "\\.")} \\(${await aliceId()}\\) at `));
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
});
