/**
 * `conduit-service start` as a real child process: the one line it prints,
 * a clean exit 0 on SIGTERM, exit 1 with a sentence when the broker or the
 * database cannot be reached or the data directory is taken, and a warning at
 * every start while its broker login is guest/guest.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../../scripts/local-stack.mjs";
import { deleteUsers, makeBrokerUser, managementReachable } from "./broker.helpers.js";
import { createPostgresDatabase } from "./helpers/databases.js";
import { prepareServiceHome } from "./helpers/service.js";

const CLI = fileURLToPath(new URL("../src/cli.ts", import.meta.url));

interface Run {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exit: Promise<number | null>;
}

function run(args: string[], userDir: string): Run {
  const child = spawn(process.execPath, ["--import", "tsx", CLI, ...args], {
    env: { ...process.env, CONDUIT_USER_DIR: userDir },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const result: Run = {
    child,
    stdout: "",
    stderr: "",
    exit: once(child, "exit").then(([code]) => code as number | null),
  };
  child.stdout!.on("data", (d: Buffer) => {
    result.stdout += d.toString();
  });
  child.stderr!.on("data", (d: Buffer) => {
    result.stderr += d.toString();
  });
  return result;
}

describe("conduit-service start", () => {
  const disposers: Array<() => Promise<void>> = [];
  const children: ChildProcess[] = [];
  let amqpUrl: string;
  let userDir: string;

  beforeAll(async () => {
    const home = await prepareServiceHome();
    disposers.push(home.dispose);
    ({ amqpUrl, userDir } = home.value);
  });

  afterAll(async () => {
    for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
    for (const dispose of disposers.reverse()) await dispose();
  });

  it("serves, prints where it listens, and exits 0 on SIGTERM", async () => {
    const service = run(["start", "--port", "0", "--amqp-url", amqpUrl, "--log-level", "warn"], userDir);
    children.push(service.child);
    await expect.poll(() => service.stdout, { timeout: 45_000, interval: 100 }).toMatch(/listening/);
    const match =
      /^Conduit service listening on (http:\/\/127\.0\.0\.1:\d+) \(store: PGlite at (.+); broker: (.+)\)$/m.exec(
        service.stdout,
      );
    expect(match).not.toBeNull();
    const [, url, dataDir, broker] = match!;
    expect(dataDir).toBe(join(userDir, "service"));
    expect(broker).toMatch(/^amqp:\/\/guest:\*\*\*@127\.0\.0\.1:5672\//);
    expect(service.stdout).toContain(`credentials.json`);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);

    // A second one on the same data directory.
    const second = run(["start", "--port", "0", "--amqp-url", amqpUrl], userDir);
    children.push(second.child);
    expect(await second.exit).toBe(1);
    expect(second.stderr).toContain(`Another Conduit service (pid ${service.child.pid}) is using the data directory`);

    const { token } = JSON.parse(await readFile(join(userDir, "credentials.json"), "utf8")) as { token: string };
    expect(service.stdout).not.toContain(token);
    expect(service.stderr).not.toContain(token);

    service.child.kill("SIGTERM");
    expect(await service.exit).toBe(0);
    expect(await readdir(join(userDir, "service"))).not.toContain("service.lock");
  });

  it("exits 1 with the fix when RabbitMQ cannot be reached", async () => {
    const r = run(["start", "--port", "0", "--amqp-url", "amqp://guest:secret@127.0.0.1:1"], userDir);
    children.push(r.child);
    expect(await r.exit).toBe(1);
    expect(r.stderr).toMatch(
      /Cannot connect to RabbitMQ at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:1 .*rabbitmq-server -detached/,
    );
    expect(r.stderr).not.toContain("secret");
  });

  it("exits 1 with the fix when Postgres cannot be reached", async () => {
    const r = run(
      [
        "start",
        "--port",
        "0",
        "--amqp-url",
        amqpUrl,
        "--database-url",
        "postgres://postgres:secret@127.0.0.1:1/conduit",
      ],
      userDir,
    );
    children.push(r.child);
    expect(await r.exit).toBe(1);
    expect(r.stderr).toMatch(
      /Cannot connect to Postgres at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/conduit .*--database-url/,
    );
    expect(r.stderr).not.toContain("secret");
  });

  it.skipIf(!managementReachable)(
    "warns at every start while its broker login is guest/guest, and not with an administrator of its own",
    async () => {
      const database = await createPostgresDatabase();
      disposers.push(() => database.dispose());
      const vhost = decodeURIComponent(new URL(amqpUrl).pathname.slice(1));
      const own = `conduit-test-svc-${process.pid}`;
      disposers.push(() => deleteUsers([own]));
      const ownUrl = await makeBrokerUser(own, "own-secret", "administrator", vhost);
      const guestWarning = "The service logs in to RabbitMQ as guest/guest (--amqp-url)";
      const startAndStop = async (url: string) => {
        const service = run(["start", "--port", "0", "--amqp-url", url, "--database-url", database.value], userDir);
        children.push(service.child);
        await expect.poll(() => service.stdout, { timeout: 45_000, interval: 100 }).toMatch(/listening/);
        service.child.kill("SIGTERM");
        expect(await service.exit).toBe(0);
        return service.stderr;
      };
      for (let i = 0; i < 2; i++) {
        const stderr = await startAndStop(amqpUrl);
        expect(stderr).toContain(guestWarning);
        expect(stderr).toContain("delete guest (rabbitmqctl delete_user guest)");
      }
      // Its own administrator: scoped accounts through the management API with that login, and no warning.
      const stderr = await startAndStop(ownUrl);
      expect(stderr).not.toContain(guestWarning);
      expect(stderr).not.toContain("own-secret");
    },
    150_000,
  );

  it("exits 1 with the fix when the management API cannot be used, never falling back to a shared account", async () => {
    const port = await freePort();
    const r = run(
      ["start", "--port", "0", "--amqp-url", amqpUrl, "--amqp-management-url", `http://guest:secret@127.0.0.1:${port}`],
      userDir,
    );
    children.push(r.child);
    expect(await r.exit).toBe(1);
    // The last line (a guest/guest warning comes before it).
    expect(r.stderr.trimEnd().split("\n").at(-1)).toMatch(
      new RegExp(
        `^conduit-service: The service cannot use the RabbitMQ management API at http://127\\.0\\.0\\.1:${port} .*\\(nothing answers there: ECONNREFUSED\\); enable it with \`sudo rabbitmq-plugins enable rabbitmq_management\`, or pass --amqp-management-url .*\\.$`,
      ),
    );
    expect(r.stderr).not.toContain("secret");
  });

  it("exits 1 on a bad option", async () => {
    const r = run(["start", "--port", "lots"], userDir);
    expect(await r.exit).toBe(1);
    expect(r.stderr).toContain("is not a whole number");
  });

  it("exits 1 naming --task-batch-count or --task-batch-bytes when out of range", async () => {
    const count = run(["start", "--task-batch-count", "0"], userDir);
    expect(await count.exit).toBe(1);
    expect(count.stderr.trim()).toBe(
      "conduit-service: taskBatchCount must be a whole number of tasks from 1 to 10000 (--task-batch-count); got 0.",
    );
    const bytes = run(["start", "--task-batch-bytes", "10"], userDir);
    expect(await bytes.exit).toBe(1);
    expect(bytes.stderr.trim()).toBe(
      "conduit-service: taskBatchBytes must be a whole number of bytes from 1024 to 16777216 (--task-batch-bytes); got 10.",
    );
  });

  it("exits 1 naming --ha-function-retention-days when it is not 1 to 3650 days", async () => {
    const r = run(["start", "--ha-function-retention-days", "0"], userDir);
    expect(await r.exit).toBe(1);
    expect(r.stderr.trim()).toBe(
      "conduit-service: haFunctionRetentionDays must be a whole number of days from 1 to 3650 (--ha-function-retention-days); got 0.",
    );
  });
});
