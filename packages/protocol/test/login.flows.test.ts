/**
 * The two logins against a fake OAuth provider on node:http: the code flow
 * with PKCE (link printed, code typed back, a replayed code refused), the
 * device flow polling at the interval asked for and slower after each
 * `slow_down`; tokens.json written 0600 by atomic rename; two holders of one
 * login refreshing at once spend its refresh token once; logout.
 */
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  type CachedLogin,
  type Credential,
  fetchIdentity,
  type LoginIo,
  loginWithCode,
  loginWithDevice,
  logout,
  readLogin,
  resolveCredential,
} from "../src/index.js";
import { saveLogin } from "../src/token-store.js";
import { codeFromPage, type FakeOAuth, printedLink, startFakeOAuth } from "./fake-oauth.helpers.js";

let fake: FakeOAuth;
let userDir: string;
const savedUserDir = process.env.CONDUIT_USER_DIR;

beforeEach(async () => {
  fake = await startFakeOAuth();
  userDir = mkdtempSync(join(tmpdir(), "conduit-login-"));
  process.env.CONDUIT_USER_DIR = userDir;
});

afterEach(async () => {
  await fake.close();
  rmSync(userDir, { recursive: true, force: true });
  if (savedUserDir === undefined) delete process.env.CONDUIT_USER_DIR;
  else process.env.CONDUIT_USER_DIR = savedUserDir;
});

/** A person who opens the printed link and types the code the page shows (or `answer`). */
function person(answer?: (code: string) => string): LoginIo & { lines: string[]; questions: string[] } {
  const lines: string[] = [];
  const questions: string[] = [];
  return {
    lines,
    questions,
    print: (line) => lines.push(line),
    prompt: async (question) => {
      questions.push(question);
      const link = printedLink(lines.join("\n"), fake.url);
      if (link === undefined) throw new Error(`No link printed: ${lines.join("\n")}`);
      const code = await codeFromPage(link);
      return answer ? answer(code) : `${code}\n`;
    },
  };
}

describe("the code flow", () => {
  it("prints the link, reads the code, and caches a login the service knows", async () => {
    fake.loginAs = "alice@example.edu";
    const io = person();
    await loginWithCode(fake.url, io);
    expect(io.lines[0]).toBe("Please authenticate with Conduit here:");
    expect(io.questions).toEqual(["Enter the resulting Authorization Code here: "]);
    const link = new URL(printedLink(io.lines.join("\n"), fake.url) as string);
    expect(Object.fromEntries(link.searchParams)).toMatchObject({
      client_id: "conduit-cli",
      response_type: "code",
      redirect_uri: `${fake.url}/login/code`,
      code_challenge_method: "S256",
      scope: "openid offline_access conduit",
    });
    const exchange = fake.requests.find((r) => r.form.grant_type === "authorization_code");
    expect(exchange?.form.code_verifier).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const me = await fetchIdentity(
      fake.url,
      resolveCredential({ serviceUrl: fake.url, loginCommand: "x" }) as Credential,
    );
    expect(me.username).toBe("alice@example.edu");
  });

  it("a replayed code is refused with one sentence, and nothing is cached", async () => {
    let first = "";
    await loginWithCode(
      fake.url,
      person((code) => {
        first = code;
        return code;
      }),
    );
    rmSync(join(userDir, "tokens.json"));
    await expect(
      loginWithCode(
        fake.url,
        person(() => first),
      ),
    ).rejects.toThrow(
      `The Conduit service at ${fake.url} refused the code (invalid_grant: fake: invalid_grant); run the login again and paste the code the page shows, whole and only once.`,
    );
    expect(readLogin(fake.url)).toBeUndefined();
  });
});

describe("the device flow", () => {
  it("polls at the interval asked for, five seconds slower after each slow_down, until approved", async () => {
    fake.loginAs = "bob@example.edu";
    fake.deviceScript = ["authorization_pending", "slow_down", "authorization_pending", "slow_down"];
    const delays: number[] = [];
    const io = person();
    await loginWithDevice(fake.url, io, { sleep: async (ms) => delays.push(ms) });
    expect(delays).toEqual([2000, 2000, 7000, 7000, 12000]);
    expect(io.lines).toContain(`${fake.url}/device`);
    expect(io.lines.join("\n")).toContain("enter the code WXYZ-1234");
    const me = await fetchIdentity(
      fake.url,
      resolveCredential({ serviceUrl: fake.url, loginCommand: "x" }) as Credential,
    );
    expect(me.username).toBe("bob@example.edu");
  });

  it("a denied login ends the polling with one sentence", async () => {
    fake.deviceScript = ["authorization_pending", "access_denied"];
    const delays: number[] = [];
    await expect(loginWithDevice(fake.url, person(), { sleep: async (ms) => delays.push(ms) })).rejects.toThrow(
      "The device login did not complete: the login was denied; run the login again.",
    );
    expect(delays).toHaveLength(2);
    expect(readLogin(fake.url)).toBeUndefined();
  });
});

describe("tokens.json", () => {
  it("is written 0600 by rename (a new file each time, no temporary left), whatever was there before", async () => {
    const file = join(userDir, "tokens.json");
    writeFileSync(file, JSON.stringify({ version: 1, logins: {} }), { mode: 0o644 });
    const inodes: number[] = [];
    for (const token of ["a", "b"]) {
      saveLogin(fake.url, { access_token: token, expires_at: 1 });
      const stat = statSync(file);
      expect(stat.mode & 0o777).toBe(0o600);
      inodes.push(stat.ino);
    }
    expect(new Set(inodes).size).toBe(2);
    expect(readdirSync(userDir)).toEqual(["tokens.json"]);
    expect(readLogin(fake.url)?.access_token).toBe("b");
  });

  it("a file that is not a tokens file is named, with the fix", () => {
    writeFileSync(join(userDir, "tokens.json"), "{not json");
    expect(() => readLogin(fake.url)).toThrow(
      `${join(userDir, "tokens.json")} is not a Conduit tokens file; delete it and log in again (conduit-endpoint login, or npx conduit login).`,
    );
  });

  it("two holders of one login refreshing at once spend its rotated refresh token once", async () => {
    await loginWithCode(fake.url, person());
    saveLogin(fake.url, { ...(readLogin(fake.url) as CachedLogin), expires_at: 0 }); // expired: both must renew
    const options = { serviceUrl: fake.url, loginCommand: "x" };
    const [a, b] = [resolveCredential(options) as Credential, resolveCredential(options) as Credential];
    const [tokenA, tokenB] = await Promise.all([a.accessToken(), b.accessToken()]);
    // One refreshed under the lock; the other found the fresh token there instead of spending the same refresh token.
    expect(fake.requests.filter((r) => r.form.grant_type === "refresh_token")).toHaveLength(1);
    expect(tokenA).toBe(tokenB);
    expect((await fetchIdentity(fake.url, b)).username).toBe(fake.loginAs);
  });

  it("logout removes the login and revokes its refresh token", async () => {
    await loginWithCode(fake.url, person());
    const refresh = readLogin(fake.url)?.refresh_token as string;
    expect(fake.refreshTokens.has(refresh)).toBe(true);
    expect(await logout(fake.url)).toBe(true);
    expect(readLogin(fake.url)).toBeUndefined();
    expect(fake.refreshTokens.has(refresh)).toBe(false);
    expect(await logout(fake.url)).toBe(false);
  });
});
