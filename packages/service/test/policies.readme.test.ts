/**
 * The README's "Authentication policies" commands, run as written (with the
 * ids the earlier ones printed put in for PROJECT_ID and POLICY_ID) against a
 * service started in-process: each does what the README says, another
 * identity's `policy remove` is refused in one sentence, and `user totp`
 * prints a secret whose codes the login then asks for.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningService } from "../src/index.js";
import { createTempDir } from "./helpers/databases.js";
import { type Ran, runToEnd } from "./helpers/run.js";
import { startTestService } from "./helpers/service.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const SECTION = "#### Authentication policies";

/** The section's command lines (continuations joined), in order. */
function readmeCommands(): string[] {
  const readme = readFileSync(`${ROOT}README.md`, "utf8");
  const start = readme.indexOf(`\n${SECTION}\n`) + 1;
  if (start === 0) throw new Error(`README.md has no "${SECTION}" section; this test runs its commands.`);
  const end = readme.slice(start + SECTION.length).search(/\n##/);
  const section = readme.slice(start, end < 0 ? undefined : start + SECTION.length + end);
  const lines: string[] = [];
  for (const block of section.matchAll(/```sh\n([\s\S]*?)```/g)) {
    lines.push(...block[1].replaceAll("\\\n", " ").split("\n"));
  }
  return lines.filter((line) => line.startsWith("npx conduit-service"));
}

describe("the README's authentication policy commands", () => {
  const disposers: Array<() => Promise<void>> = [];
  let service: RunningService;
  let userDir: string;
  const commands = readmeCommands();
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    const started = await startTestService();
    disposers.push(started.dispose);
    service = started.value;
    const dir = await createTempDir();
    disposers.push(() => dir.dispose());
    userDir = dir.value;
    await service.createIdentity("alice@example.edu");
  }, 60_000);

  afterAll(async () => {
    for (const dispose of disposers.reverse()) await dispose();
  });

  function sh(line: string, token = service.adminToken): Promise<Ran> {
    const filled = line.replace(/\b(PROJECT_ID|POLICY_ID)\b/g, (name) => ids[name] ?? name);
    const env = { ...process.env, CONDUIT_USER_DIR: userDir, CONDUIT_SERVICE_URL: service.url, CONDUIT_TOKEN: token };
    return runToEnd("sh", ["-c", filled], { cwd: ROOT, env });
  }

  function command(pattern: RegExp): string {
    const line = commands.find((c) => pattern.test(c));
    if (!line) throw new Error(`README.md's "${SECTION}" no longer shows a line matching ${pattern}.`);
    return line;
  }

  /** Runs the line; it must succeed quietly; returns its stdout. */
  async function ok(pattern: RegExp): Promise<string> {
    const ran = await sh(command(pattern));
    expect(ran.stderr).toBe("");
    expect(ran.code).toBe(0);
    return ran.stdout;
  }

  const lastLine = (out: string) => out.trimEnd().split("\n").at(-1) ?? "";

  it("creates a project and a policy with the domains and timeout given, and prints their ids last", async () => {
    ids.PROJECT_ID = lastLine(await ok(/ project create /));
    expect(await service.store.getProject(ids.PROJECT_ID)).toMatchObject({ contactEmail: "ops@example.edu" });
    ids.POLICY_ID = lastLine(await ok(/ policy create /));
    expect(await service.store.getAuthPolicy(ids.POLICY_ID)).toMatchObject({
      projectId: ids.PROJECT_ID,
      domainInclude: ["*.example.edu", "example.edu"],
      domainExclude: ["guest.example.edu"],
      authTimeout: 3600,
    });
    expect(await ok(/ policy list$/)).toContain(ids.POLICY_ID);
    expect(JSON.parse(await ok(/ policy show /))).toMatchObject({ id: ids.POLICY_ID, display_name: "Campus" });
  });

  it("warns on stderr about a timeout under the 60-second cache", async () => {
    const ran = await sh(
      `npx conduit-service policy create --project ${ids.PROJECT_ID} --name Short --auth-timeout 30`,
    );
    expect(ran.code).toBe(0);
    expect(ran.stderr).toMatch(/^Warning: authentication_assurance_timeout is 30 seconds, under the 60 seconds/);
    await service.store.deleteAuthPolicy(lastLine(ran.stdout));
  });

  it("refuses another identity's policy remove in one sentence, and an admin-only command to a user", async () => {
    const { token } = await service.createIdentity("bob@example.org");
    const ran = await sh(command(/ policy remove /), token);
    expect(ran.code).toBe(1);
    expect(ran.stderr).toBe(
      `conduit-service: Authentication policy ${ids.POLICY_ID} belongs to another identity; only its owner or the administrator may change or delete it.\n`,
    );
    const sub = await sh(command(/ subscription create /), token);
    expect(sub.code).toBe(1);
    expect(sub.stderr).toContain("may manage subscriptions, not bob@example.org");
  });

  it("creates and lists a High-Assurance subscription", async () => {
    const id = lastLine(await ok(/ subscription create /));
    expect(await service.store.getSubscription(id)).toMatchObject({ displayName: "HA-lab", highAssurance: true });
    expect(await ok(/ subscription list$/)).toMatch(new RegExp(`HA-lab +\\| ${id} \\| yes`));
  });

  it("turns on a one-time code and prints its secret and otpauth link", async () => {
    const out = await ok(/ user totp /);
    const [, secret, uri] = out.trimEnd().split("\n");
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(uri).toBe(
      `otpauth://totp/Conduit%3Aalice%40example.edu?secret=${secret}&issuer=Conduit&algorithm=SHA1&digits=6&period=30`,
    );
    const alice = await service.store.findIdentityByUsername("alice@example.edu");
    expect(await service.authStore.totp(alice?.id ?? "")).toMatchObject({ secret, confirmed: true });
  });

  it("removes the policy, then the project", async () => {
    await ok(/ policy remove /);
    expect(await service.store.getAuthPolicy(ids.POLICY_ID)).toBeUndefined();
    await ok(/ project remove /);
    expect(await service.store.getProject(ids.PROJECT_ID)).toBeUndefined();
  });
});
