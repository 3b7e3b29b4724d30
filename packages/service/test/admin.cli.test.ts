import { createServer } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningService } from "../src/index.js";
import { createTempDir } from "./helpers/databases.js";
import { type Ran, runServiceCli } from "./helpers/run.js";
import { startTestService } from "./helpers/service.js";

describe("conduit-service user", () => {
  const disposers: Array<() => Promise<void>> = [];
  let service: RunningService;
  let userDir: string;

  beforeAll(async () => {
    const dir = await createTempDir();
    disposers.push(() => dir.dispose());
    userDir = dir.value;
    const started = await startTestService({ dataDir: join(dir.value, "service") });
    disposers.push(started.dispose);
    service = started.value;
  }, 60_000);

  afterAll(async () => {
    for (const dispose of disposers.reverse()) await dispose();
  });

  /** Runs the CLI to its end (it is short-lived), as the admin unless `env` says otherwise. */
  function cli(args: string[], env: Record<string, string> = {}): Promise<Ran> {
    return runServiceCli(args, {
      ...process.env,
      CONDUIT_USER_DIR: userDir,
      CONDUIT_SERVICE_URL: service.url,
      CONDUIT_TOKEN: service.adminToken,
      ...env,
    });
  }

  async function whoami(token: string): Promise<{ status: number; username?: string }> {
    const r = await fetch(`${service.url}/v1/whoami`, { headers: { authorization: `Bearer ${token}` } });
    const body = (await r.json()) as { username?: string };
    return { status: r.status, username: body.username };
  }

  /** The token line of `user add` / `user token` output, checked against its export hint. */
  function printedToken(stdout: string): string {
    const lines = stdout.trimEnd().split("\n");
    const token = lines.at(-2)!;
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(lines.at(-1)).toBe(`export CONDUIT_TOKEN=${token}`);
    return token;
  }

  it("adds, lists, issues tokens to and removes an identity", async () => {
    const add = await cli([
      "user",
      "add",
      "alice@example.edu",
      "--name",
      "Alice Liddell",
      "--email",
      "alice@example.edu",
    ]);
    expect(add).toMatchObject({ code: 0, stderr: "" });
    const id = /^Created identity alice@example\.edu \(id ([0-9a-f-]{36})\)\./.exec(add.stdout)?.[1];
    expect(id).toBeDefined();
    const first = printedToken(add.stdout);
    expect(await whoami(first)).toEqual({ status: 200, username: "alice@example.edu" });

    const list = await cli(["user", "list"]);
    expect(list.code).toBe(0);
    const lines = list.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^Username\s+\| Identity ID\s+\| Name\s+\| Email\s+\| Token expiry$/);
    expect(lines).toContainEqual(
      expect.stringMatching(
        new RegExp(`^alice@example\\.edu\\s+\\| ${id} \\| Alice Liddell\\s+\\| alice@example\\.edu\\s+\\| never$`),
      ),
    );
    expect(lines).toContainEqual(expect.stringMatching(/^admin@localhost\s+\|/));

    const token = await cli(["user", "token", "alice@example.edu"]);
    expect(token.code).toBe(0);
    expect(token.stdout).toMatch(/^New API token for alice@example\.edu \(older tokens still work/);
    const second = printedToken(token.stdout);
    expect(second).not.toBe(first);
    expect(await whoami(second)).toEqual({ status: 200, username: "alice@example.edu" });
    expect((await whoami(first)).status).toBe(200);

    const revoke = await cli(["user", "token", "alice@example.edu", "--revoke-others"]);
    expect(revoke.stdout).toMatch(/^New API token for alice@example\.edu \(2 older tokens revoked\):/);
    const third = printedToken(revoke.stdout);
    expect((await whoami(third)).status).toBe(200);
    // The service remembers a token for a few seconds (authenticator.ts), so revocation shows within that.
    await expect.poll(async () => (await whoami(first)).status, { timeout: 15_000, interval: 250 }).toBe(401);
    await expect.poll(async () => (await whoami(second)).status, { timeout: 15_000, interval: 250 }).toBe(401);

    const remove = await cli(["user", "remove", "alice@example.edu"]);
    expect(remove).toMatchObject({ code: 0, stderr: "" });
    expect(remove.stdout).toBe(`Removed identity alice@example.edu (id ${id}) with its tokens.\n`);
    await expect.poll(async () => (await whoami(third)).status, { timeout: 15_000, interval: 250 }).toBe(401);
    expect(await service.store.findIdentityByUsername("alice@example.edu")).toBeUndefined();
  }, 60_000);

  it("gives tokens an expiry with --expires, shows it in `user list`, and an expired token gets 401 saying so", async () => {
    const before = Date.now();
    const add = await cli(["user", "add", "ivan@example.edu", "--expires", "90d"]);
    expect(add).toMatchObject({ code: 0, stderr: "" });
    const shown =
      /^Created identity ivan@example\.edu \(id [0-9a-f-]{36}\)\. Its API token \(it expires at (\S+)\), shown only now:\n/.exec(
        add.stdout,
      )?.[1];
    expect(shown).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const ninetyDays = 90 * 86_400_000;
    expect(Date.parse(shown!)).toBeGreaterThanOrEqual(before + ninetyDays - 1_000);
    expect(Date.parse(shown!)).toBeLessThanOrEqual(Date.now() + ninetyDays);
    expect(await whoami(printedToken(add.stdout))).toEqual({ status: 200, username: "ivan@example.edu" });

    /** `user token ivan@example.edu --expires <duration>`: the token and the expiry it printed. */
    const issue = async (duration: string) => {
      const ran = await cli(["user", "token", "ivan@example.edu", "--expires", duration]);
      expect(ran).toMatchObject({ code: 0, stderr: "" });
      const expiry = /^New API token for ivan@example\.edu \(it expires at (\S+); older tokens still work/.exec(
        ran.stdout,
      )?.[1];
      expect(expiry).toBeDefined();
      return { token: printedToken(ran.stdout), expiry: expiry! };
    };
    const hour = await issue("1h");
    expect((await whoami(hour.token)).status).toBe(200);
    // A CLI run takes seconds on a busy machine: this one may expire before it is even printed.
    const second = await issue("1s");
    await expect.poll(async () => (await whoami(second.token)).status, { timeout: 15_000, interval: 250 }).toBe(401);
    const r = await fetch(`${service.url}/v1/whoami`, { headers: { authorization: `Bearer ${second.token}` } });
    expect(await r.json()).toMatchObject({
      code: "TOKEN_EXPIRED",
      message: expect.stringMatching(
        /^This API token of ivan@example\.edu expired at \S+; ask the service's administrator for a new one \(`conduit-service user token ivan@example\.edu`\) and set CONDUIT_TOKEN to it\.$/,
      ),
    });
    expect((await whoami(hour.token)).status).toBe(200);

    // Oldest token first: 90 days, an hour, and the expired one.
    const list = await cli(["user", "list"]);
    expect(list.stdout.trimEnd().split("\n")).toContainEqual(
      expect.stringMatching(
        new RegExp(`^ivan@example\\.edu\\s+\\|.*\\| ${shown}, ${hour.expiry}, expired ${second.expiry}$`),
      ),
    );

    const bad = await cli(["user", "add", "judy@example.edu", "--expires", "soon"]);
    expect(bad).toEqual({
      code: 1,
      stdout: "",
      stderr:
        'conduit-service: --expires must be a positive duration of at most 3650d, written as a whole number and a unit (d, h, m or s), e.g. 7d, 12h, 30m or 90s; got "soon".\n',
    });
    expect(await service.store.findIdentityByUsername("judy@example.edu")).toBeUndefined();
  }, 60_000);

  it("refuses a bad username and a duplicate, each with a sentence (the other refusals: admin.routes.test.ts)", async () => {
    const bad = await cli(["user", "add", "alice"]);
    expect(bad).toEqual({
      code: 1,
      stdout: "",
      stderr: 'conduit-service: Username "alice" is not of the form user@domain; pass e.g. alice@example.org.\n',
    });
    expect((await cli(["user", "add", "carol@example.edu"])).code).toBe(0);
    const again = await cli(["user", "add", "carol@example.edu"]);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe(
      "conduit-service: Identity carol@example.edu already exists; give it a new token with `conduit-service user token carol@example.edu` instead.\n",
    );
  }, 60_000);

  it("tells a non-admin that only the local administrator may manage identities", async () => {
    const { token } = await service.createIdentity("dave@example.edu");
    const ran = await cli(["user", "list"], { CONDUIT_TOKEN: token });
    expect(ran.code).toBe(1);
    expect(ran.stderr).toBe(
      "conduit-service: Only the local administrator (admin@localhost) may manage identities, not dave@example.edu; use the token in credentials.json under CONDUIT_USER_DIR (default ~/.conduit) of the account that runs the service.\n",
    );
  }, 30_000);

  it("names the URL and `conduit-service start` when no service runs there", async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as { port: number };
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const url = `http://127.0.0.1:${port}`;
    const ran = await cli(["user", "list"], { CONDUIT_SERVICE_URL: url });
    expect(ran).toEqual({
      code: 1,
      stdout: "",
      stderr: `conduit-service: No Conduit service answers at ${url}; start it with \`conduit-service start\` (or set CONDUIT_SERVICE_URL to where it runs).\n`,
    });
  }, 30_000);
});
