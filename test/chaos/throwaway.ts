/**
 * Throwaway servers the full chaos run restarts freely (recipes from the
 * machine's infra notes): a RabbitMQ node of its own and a Postgres cluster
 * of its own, each on free ports in a temp dir owned by its service user.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort, portOpen, waitFor } from "../../scripts/local-stack.mjs";

const execFileAsync = promisify(execFile);

function uidOf(user: string): { uid: number; gid: number } {
  const line = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((l) => l.startsWith(`${user}:`));
  if (line === undefined) throw new Error(`there is no user ${user}; install the server that creates it`);
  const [, , uid, gid] = line.split(":");
  return { uid: Number(uid), gid: Number(gid) };
}

function ownedTempDir(prefix: string, user: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const { uid, gid } = uidOf(user);
  chownSync(dir, uid, gid);
  return dir;
}

function requireRoot(what: string): void {
  if (userInfo().uid !== 0) throw new Error(`${what} needs root (it runs the server as its own user); run as root.`);
}

export interface ThrowawayServer {
  port: number;
  /** Stops the server (`crash`: without a clean shutdown) and starts it again; resolves once it accepts connections. */
  restart(options?: { crash?: boolean }): Promise<void>;
  stop(): Promise<void>;
}

export interface ThrowawayRabbitMQOptions {
  /** Enable the management plugin on a port of its own (`managementPort`). @default false */
  management?: boolean;
  /**
   * Replace `guest` by an administrator with a random password (needs
   * `management`), as a production broker is set up: `adminAmqpUrl` and
   * `adminManagementUrl` then carry it. @default false
   */
  withoutGuest?: boolean;
}

export interface ThrowawayRabbitMQ extends ThrowawayServer {
  /** The management API's port, when `management` is on. */
  managementPort: number | undefined;
  /** `amqp://USER:PASS@127.0.0.1:PORT` of an administrator (guest's, unless `withoutGuest`). */
  adminAmqpUrl: string;
  /** `http://USER:PASS@127.0.0.1:MPORT` of that administrator, when `management` is on. */
  adminManagementUrl: string | undefined;
}

/** A RabbitMQ node (`chaos-<random>@localhost`) listening on 127.0.0.1 only. */
export async function startThrowawayRabbitMQ(options: ThrowawayRabbitMQOptions = {}): Promise<ThrowawayRabbitMQ> {
  requireRoot("A throwaway RabbitMQ node");
  if (options.withoutGuest && !options.management) throw new Error("withoutGuest needs management: true");
  const dir = ownedTempDir("conduit-chaos-rabbitmq-", "rabbitmq");
  const port = await freePort();
  const distPort = await freePort();
  const managementPort = options.management ? await freePort() : undefined;
  const { uid, gid } = uidOf("rabbitmq");
  const write = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    chownSync(join(dir, name), uid, gid);
  };
  const management =
    managementPort === undefined ? "" : `management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = ${managementPort}\n`;
  write("rabbitmq.conf", `listeners.tcp.local = 127.0.0.1:${port}\n${management}`);
  write("rabbitmq-env.conf", "");
  write("enabled_plugins", managementPort === undefined ? "[].\n" : "[rabbitmq_management].\n");
  const env = {
    PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
    HOME: "/var/lib/rabbitmq",
    RABBITMQ_NODENAME: `chaos-${randomBytes(4).toString("hex")}@localhost`,
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_CONF_ENV_FILE: join(dir, "rabbitmq-env.conf"),
    RABBITMQ_CONFIG_FILE: join(dir, "rabbitmq.conf"),
    RABBITMQ_MNESIA_BASE: join(dir, "mnesia"),
    RABBITMQ_LOG_BASE: join(dir, "log"),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, "enabled_plugins"),
    RABBITMQ_PID_FILE: join(dir, "pid"),
  };
  let child: ChildProcess | undefined;
  const start = async () => {
    rmSync(join(dir, "pid"), { force: true });
    // cwd: the node's own folder, since the test's (the checkout) may be closed to the rabbitmq user.
    child = spawn("rabbitmq-server", [], { cwd: dir, env, uid, gid, stdio: "ignore" });
    const started = child;
    await waitFor(
      `RabbitMQ node ${env.RABBITMQ_NODENAME} accepting connections on 127.0.0.1:${port}`,
      async () => {
        if (started.exitCode !== null)
          throw new Error(`rabbitmq-server exited with ${started.exitCode}; see ${dir}/log`);
        return portOpen(port);
      },
      120_000,
    );
  };
  const halt = async (signal: NodeJS.Signals) => {
    const running = child;
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return;
    // rabbitmq-server is a shell script: signal the Erlang VM itself (its pid file).
    const pid = Number(readFileSync(join(dir, "pid"), "utf8").trim());
    process.kill(pid, signal);
    await new Promise<void>((resolve) => {
      if (running.exitCode !== null || running.signalCode !== null) resolve();
      else running.once("exit", () => resolve());
    });
  };
  await start();
  let admin = { user: "guest", password: "guest" };
  if (managementPort !== undefined) {
    await waitFor(`the management API of ${env.RABBITMQ_NODENAME}`, () => portOpen(managementPort), 120_000);
    if (options.withoutGuest) admin = await replaceGuest(managementPort);
  }
  const credentials = `${admin.user}:${encodeURIComponent(admin.password)}`;
  return {
    port,
    managementPort,
    adminAmqpUrl: `amqp://${credentials}@127.0.0.1:${port}`,
    adminManagementUrl: managementPort === undefined ? undefined : `http://${credentials}@127.0.0.1:${managementPort}`,
    async restart({ crash = false } = {}) {
      await halt(crash ? "SIGKILL" : "SIGTERM");
      await start();
    },
    async stop() {
      await halt("SIGTERM");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Adds an administrator with a random password and deletes `guest`, through the management API. */
async function replaceGuest(managementPort: number): Promise<{ user: string; password: string }> {
  const admin = { user: "conduit-admin", password: randomBytes(18).toString("base64url") };
  const api = async (auth: { user: string; password: string }, method: string, path: string, body?: unknown) => {
    const response = await fetch(`http://127.0.0.1:${managementPort}/api${path}`, {
      method,
      headers: {
        authorization: `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString("base64")}`,
        "content-type": "application/json",
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${await response.text()}`);
  };
  const guest = { user: "guest", password: "guest" };
  await api(guest, "PUT", `/users/${admin.user}`, { password: admin.password, tags: "administrator" });
  await api(guest, "PUT", `/permissions/%2F/${admin.user}`, { configure: ".*", write: ".*", read: ".*" });
  await api(admin, "DELETE", "/users/guest");
  return admin;
}

const PG_BIN = "/usr/lib/postgresql/15/bin";

/** A Postgres 15 cluster with trust auth on 127.0.0.1; `url` connects as postgres. */
export async function startThrowawayPostgres(): Promise<ThrowawayServer & { url: string }> {
  requireRoot("A throwaway Postgres server");
  const dir = ownedTempDir("conduit-chaos-postgres-", "postgres");
  const port = await freePort();
  const { uid, gid } = uidOf("postgres");
  const asPostgres = (args: string[]) =>
    execFileAsync(join(PG_BIN, args[0]), args.slice(1), { uid, gid, cwd: dir, env: { PATH: process.env.PATH } });
  const data = join(dir, "data");
  await asPostgres(["initdb", "-D", data, "-A", "trust", "-U", "postgres"]);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`;
  const start = () => asPostgres(["pg_ctl", "-D", data, "-o", options, "-l", join(dir, "log"), "-w", "start"]);
  await start();
  return {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async restart({ crash = false } = {}) {
      await asPostgres(["pg_ctl", "-D", data, "-m", crash ? "immediate" : "fast", "-w", "stop"]);
      await start();
    },
    async stop() {
      await asPostgres(["pg_ctl", "-D", data, "-m", "fast", "-w", "stop"]).catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
