/**
 * `--public-url`: behind a proxy the service is reached at another origin than
 * it listens on; the OpenID issuer, the tokens' audience and the code page's
 * redirect use that origin, and a login through it works. A URL with a path,
 * or not http(s), is refused with a sentence.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../../scripts/local-stack.mjs";
import type { RunningService } from "../src/index.js";
import { compileOptions } from "../src/service-options.js";
import { codeLogin, jwtPayload } from "./helpers/oidc-flows.js";
import { startTestService } from "./helpers/service.js";

describe("--public-url", () => {
  const disposers: Array<() => Promise<void>> = [];
  let service: RunningService;
  let publicUrl: string;

  beforeAll(async () => {
    const port = await freePort();
    // "localhost" stands for the proxy's name: another origin than the listen address 127.0.0.1.
    publicUrl = `http://localhost:${port}`;
    const started = await startTestService({ port, publicUrl: `${publicUrl}/` });
    disposers.push(started.dispose);
    service = started.value;
  }, 60_000);

  afterAll(async () => {
    for (const dispose of disposers.reverse()) await dispose();
  });

  it("is the issuer, the audience and the redirect's origin", async () => {
    expect(service.url).not.toBe(publicUrl);
    const doc = (await (await fetch(`${publicUrl}/.well-known/openid-configuration`)).json()) as Record<string, string>;
    expect(doc.issuer).toBe(publicUrl);
    // The provider names its endpoints by the Host the request came with (the proxy passes it on).
    expect(doc.token_endpoint).toBe(`${publicUrl}/oidc/token`);
    const added = await fetch(`${service.url}/v1/admin/identities`, {
      method: "POST",
      headers: { authorization: `Bearer ${service.adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ username: "frank@example.edu", password: "frank's password" }),
    });
    expect(added.status).toBe(201);
    const tokens = await codeLogin(publicUrl, "frank@example.edu", "frank's password");
    expect(jwtPayload(tokens.access_token)).toMatchObject({ iss: publicUrl, aud: `${publicUrl}/v1` });
    const who = await fetch(`${service.url}/v1/whoami`, {
      headers: { authorization: `Bearer ${tokens.access_token}` },
    });
    expect(((await who.json()) as { username: string }).username).toBe("frank@example.edu");
  });

  it.each(["https://conduit.example.edu/api", "ftp://conduit.example.edu", "not a url"])(
    "refuses %s with a sentence",
    (value) => {
      expect(() => compileOptions({ publicUrl: value })).toThrow(/publicUrl must be the http\(s\) origin/);
    },
  );
});
