/**
 * First start: the admin identity, credentials.json (0600, atomic, rewritten
 * only when missing or stale), and the one-process lock on a PGlite data dir.
 */
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { paths } from "@conduit/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningService, startService } from "../src/index.js";
import { prepareServiceHome } from "./helpers/service.js";

describe("service first start", () => {
  const disposers: Array<() => Promise<void>> = [];
  let userDir: string;
  let amqpUrl: string;
  const running: RunningService[] = [];

  beforeAll(async () => {
    const home = await prepareServiceHome();
    disposers.push(home.dispose);
    ({ amqpUrl, userDir } = home.value);
    // The test process is this suite's alone (vitest forks), so the env var is too.
    process.env.CONDUIT_USER_DIR = userDir;
  });

  afterAll(async () => {
    for (const s of running) await s.close();
    for (const dispose of disposers.reverse()) await dispose();
  });

  async function start(): Promise<RunningService> {
    const service = await startService({ port: 0, amqpUrl, logLevel: "silent" });
    running.push(service);
    return service;
  }

  async function whoami(service: RunningService, token: string): Promise<number> {
    return (await fetch(`${service.url}/v1/whoami`, { headers: { authorization: `Bearer ${token}` } })).status;
  }

  it("writes credentials.json (0600) with the URL and a working admin token", async () => {
    const service = await start();
    const file = paths.credentialsFile();
    expect(file).toBe(join(userDir, "credentials.json"));
    expect(service.credentialsFile).toBe(file);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const credentials = JSON.parse(await readFile(file, "utf8"));
    expect(credentials).toEqual({
      service_url: service.url,
      token: service.adminToken,
      identity: { id: expect.any(String), username: "admin@localhost" },
    });
    expect(await whoami(service, credentials.token)).toBe(200);
    // PGlite lives in $CONDUIT_USER_DIR/service by default.
    expect(await readdir(join(userDir, "service"))).toEqual(expect.arrayContaining(["pgdata", "service.lock"]));
  });

  it("refuses a second service on the same data directory", async () => {
    await expect(startService({ port: 0, amqpUrl, logLevel: "silent" })).rejects.toThrow(
      `Another Conduit service (pid ${process.pid}) is using the data directory ${join(userDir, "service")}; stop it first`,
    );
  });

  it("keeps a working token across restarts and replaces a stale one", async () => {
    const first = running.pop()!;
    const { token } = JSON.parse(await readFile(paths.credentialsFile(), "utf8"));
    await first.close();
    await expect(readdir(join(userDir, "service"))).resolves.not.toContain("service.lock");

    // A new port: the URL is updated, the token kept.
    const second = await start();
    const after = JSON.parse(await readFile(paths.credentialsFile(), "utf8"));
    expect(after).toMatchObject({ service_url: second.url, token });
    expect(second.adminToken).toBe(token);
    await second.close();
    running.pop();

    // A token the store does not know (e.g. the data dir was wiped): a new one is written.
    await writeFile(paths.credentialsFile(), JSON.stringify({ ...after, token: "stale" }), { mode: 0o600 });
    const third = await start();
    const fresh = JSON.parse(await readFile(paths.credentialsFile(), "utf8"));
    expect(fresh.token).not.toBe("stale");
    expect(fresh.token).toBe(third.adminToken);
    expect(await whoami(third, fresh.token)).toBe(200);
    expect(await whoami(third, "stale")).toBe(401);
    expect((await stat(paths.credentialsFile())).mode & 0o777).toBe(0o600);
    expect((await readdir(userDir)).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });

  it("takes over the lock of a service that died", async () => {
    await running.pop()!.close();
    // A pid that cannot be alive (above pid_max).
    await writeFile(join(userDir, "service", "service.lock"), "99999999\n");
    const service = await start();
    expect(await readFile(join(userDir, "service", "service.lock"), "utf8")).toBe(`${process.pid}\n`);
    expect(await whoami(service, service.adminToken)).toBe(200);
  });

  it("creates identities with tokens, and refuses a username without a domain", async () => {
    const service = running[running.length - 1];
    const { identity, token } = await service.createIdentity("carol@example.org", { email: "c@example.org" });
    expect(identity).toMatchObject({ username: "carol@example.org", email: "c@example.org" });
    expect(await whoami(service, token)).toBe(200);
    const again = await service.createIdentity("carol@example.org");
    expect(again.identity.id).toBe(identity.id);
    expect(again.token).not.toBe(token);
    await expect(service.createIdentity("carol")).rejects.toThrow(/not of the form user@domain/);
  });

  it("validates options once, naming the fields", async () => {
    await expect(startService({ port: 70000 })).rejects.toThrow(/port must be a whole number from 0 to 65535/);
    await expect(startService({ dataDir: "/tmp/x", databaseUrl: "postgres://x/y" })).rejects.toThrow(
      /dataDir .* and databaseUrl .* both choose the store/,
    );
    await expect(startService({ maxTaskBytes: 100, maxRequestBytes: 10 })).rejects.toThrow(
      /maxRequestBytes \(10\) is below maxTaskBytes \(100\)/,
    );
  });
});
