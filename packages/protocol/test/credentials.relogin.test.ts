/**
 * A cached login refused by an endpoint's authentication policy (403
 * `AUTH_POLICY_UNMET`), against the fake OAuth provider: with a person at the
 * terminal it runs the code flow once more (printing the policy's
 * session_message, asking for a fresh authentication) and retries the call
 * once; a second refusal is one AuthPolicyUnmetError; without a terminal it
 * fails at once, naming the login command.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  AuthPolicyUnmetError,
  type LoginIo,
  loginWithCode,
  obtainCredential,
  readLogin,
  requestWithCredential,
} from "../src/index.js";
import { codeFromPage, type FakeOAuth, printedLink, startFakeOAuth } from "./fake-oauth.helpers.js";

let fake: FakeOAuth;
let userDir: string;
const saved = { userDir: process.env.CONDUIT_USER_DIR, token: process.env.CONDUIT_TOKEN };

beforeEach(async () => {
  fake = await startFakeOAuth();
  userDir = mkdtempSync(join(tmpdir(), "conduit-relogin-"));
  process.env.CONDUIT_USER_DIR = userDir;
  delete process.env.CONDUIT_TOKEN;
});

afterEach(async () => {
  await fake.close();
  rmSync(userDir, { recursive: true, force: true });
  for (const [name, value] of [
    ["CONDUIT_USER_DIR", saved.userDir],
    ["CONDUIT_TOKEN", saved.token],
  ] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

/** A person at the terminal who opens each printed link and types the code its page shows. */
function person(): LoginIo & { lines: string[]; links: URL[] } {
  const lines: string[] = [];
  const links: URL[] = [];
  return {
    lines,
    links,
    print: (line) => lines.push(line),
    prompt: async () => {
      const link = printedLink(lines.join("\n"), fake.url) ?? "";
      lines.length = 0;
      links.push(new URL(link));
      return codeFromPage(link);
    },
  };
}

const codeLogins = () => fake.requests.filter((r) => r.form.grant_type === "authorization_code").length;

async function guardedCall(interactive: boolean, io: LoginIo) {
  await loginWithCode(fake.url, person());
  const credential = await obtainCredential({
    serviceUrl: fake.url,
    loginCommand: "npx conduit login",
    interactive,
    io,
  });
  return requestWithCredential<{ username: string }>(credential, {
    method: "GET",
    url: `${fake.url}/v1/guarded`,
    urlSetting: "serviceUrl",
    unreachable: (cause) => new Error(`unreachable: ${String(cause)}`),
  });
}

describe("a cached login refused by an authentication policy", () => {
  it("logs in again once on the terminal, showing the session message, and the retried call goes through", async () => {
    const io = person();
    const answer = await guardedCall(true, io);
    expect(answer).toEqual({ username: "alice@example.edu" });
    expect(codeLogins()).toBe(2);
    expect(io.links).toHaveLength(1);
    expect(io.links[0].searchParams.get("prompt")).toBe("login");
    const guarded = fake.requests.filter((r) => r.path === "/v1/guarded");
    expect(guarded).toHaveLength(2);
    // The retry carried the new login's token, and that login is the one cached now.
    expect(guarded[1].authorization).toBe(`Bearer ${readLogin(fake.url)?.access_token}`);
    expect(guarded[0].authorization).not.toBe(guarded[1].authorization);
  });

  it("prints the policy's session message before the link", async () => {
    const lines: string[] = [];
    const io = person();
    const printing: LoginIo = {
      print: (line) => {
        lines.push(line);
        io.print(line);
      },
      prompt: io.prompt,
    };
    await guardedCall(true, printing);
    expect(lines.slice(0, 2)).toEqual(["fake: log in again for policy P.", "Please authenticate with Conduit here:"]);
  });

  it("fails with one AuthPolicyUnmetError when the new login is refused too, after exactly one new login", async () => {
    fake.policyMet = false;
    const err = await guardedCall(true, person()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthPolicyUnmetError);
    expect((err as Error).message).toBe(
      `The service still refused this call after a new login with the login cached in ${join(userDir, "tokens.json")}: fake: the policy wants a login of the last 60 seconds.`,
    );
    expect(codeLogins()).toBe(2);
  });

  it("fails at once without a terminal, naming the login command", async () => {
    const io = person();
    const err = await guardedCall(false, io).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthPolicyUnmetError);
    expect((err as Error).message).toBe(
      "fake: the policy wants a login of the last 60 seconds (no terminal is here for a new login: run `npx conduit login` on one, then call again).",
    );
    expect((err as AuthPolicyUnmetError).authorizationParameters?.session_message).toBe(
      "fake: log in again for policy P.",
    );
    expect(io.links).toHaveLength(0);
    expect(codeLogins()).toBe(1);
  });
});
