/**
 * Runs a whole Conduit on this machine from the built packages, through the
 * real CLIs: RabbitMQ (started, or installed with apt-get when run as root, and
 * its management plugin enabled),
 * `conduit-service start` on PGlite (or --database-url), and
 * `conduit-endpoint configure|start`. Used by `npm run demo`, the end-to-end
 * tests and the benchmarks, so all three exercise the path a user runs.
 */
import { execFile, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { connect, createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
export const SERVICE_BIN = join(root, "packages/service/bin/conduit-service.js");
export const ENDPOINT_BIN = join(root, "packages/endpoint/bin/conduit-endpoint.js");

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves true when something accepts TCP connections on host:port. */
export function portOpen(port, host = "127.0.0.1") {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

export async function waitFor(what, check, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs / 1000} s.`);
    await sleep(100);
  }
}

/** A TCP port nobody listens on right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Makes sure RabbitMQ answers on 127.0.0.1:5672. As root it starts the local
 * node (installing rabbitmq-server with apt-get if absent); as anyone else it
 * explains how to get one, since starting a system service needs root.
 */
export async function ensureRabbitMQ(log = () => {}) {
  if (await portOpen(5672)) return;
  const isRoot = process.getuid?.() === 0;
  if (!isRoot) {
    throw new Error(
      "RabbitMQ is not running on 127.0.0.1:5672; start it (sudo rabbitmq-server -detached, or sudo apt-get install rabbitmq-server) and run this again.",
    );
  }
  if (spawnSync("sh", ["-c", "command -v rabbitmq-server"]).status !== 0) {
    log("Installing RabbitMQ with apt-get ...");
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    for (const args of [
      ["update"],
      ["install", "-y", "-o", "DPkg::Lock::Timeout=600", "--no-install-recommends", "rabbitmq-server"],
    ]) {
      const r = spawnSync("apt-get", args, { stdio: "inherit", env });
      if (r.status !== 0)
        throw new Error(`apt-get ${args[0]} failed; install rabbitmq-server by hand and run this again.`);
    }
  }
  log("Starting RabbitMQ (rabbitmq-server -detached) ...");
  spawnSync("rabbitmq-server", ["-detached"], { stdio: "ignore" });
  await waitFor("RabbitMQ accepting connections on 127.0.0.1:5672", () => portOpen(5672), 120_000);
}

/** The RabbitMQ management plugin's port on this machine. */
const MANAGEMENT_PORT = 15672;

/**
 * Makes sure the RabbitMQ management API answers on 127.0.0.1:15672: the
 * service finds it there and gives each endpoint, UEP and task group its own
 * broker account through it (it refuses to start without). As root it enables
 * the plugin; as anyone else it fails at once with the command to run.
 */
export async function ensureManagementApi(log = () => {}) {
  if (await portOpen(MANAGEMENT_PORT)) return;
  if (process.getuid?.() !== 0) {
    throw new Error(
      "The RabbitMQ management API is not running on 127.0.0.1:15672, and the service needs it to give each endpoint its own broker account; enable it with `sudo rabbitmq-plugins enable rabbitmq_management` and run this again.",
    );
  }
  log("Enabling the RabbitMQ management plugin (rabbitmq-plugins enable rabbitmq_management) ...");
  const enable = ["rabbitmq-plugins", "enable", "rabbitmq_management"];
  // As root, or as the rabbitmq user when the node's Erlang cookie is only that user's (as in .ci/run).
  const enabled =
    spawnSync(enable[0], enable.slice(1), { stdio: "ignore" }).status === 0 ||
    spawnSync("runuser", ["-u", "rabbitmq", "--", ...enable], { stdio: "ignore" }).status === 0;
  if (!enabled) {
    throw new Error(
      "rabbitmq-plugins enable rabbitmq_management failed; run it by hand (see its output) and run this again.",
    );
  }
  await waitFor(
    "the RabbitMQ management API accepting connections on 127.0.0.1:15672",
    () => portOpen(MANAGEMENT_PORT),
    60_000,
  );
}

const execFileAsync = promisify(execFile);

/**
 * Deletes the broker accounts a service made on `vhost` (endpoints', UEPs',
 * task groups'): RabbitMQ users outlive the vhost their permissions were on.
 * Best effort, through the management API as guest.
 */
async function deleteScopedAccounts(vhost) {
  const api = `http://127.0.0.1:${MANAGEMENT_PORT}/api`;
  const headers = { authorization: `Basic ${Buffer.from("guest:guest").toString("base64")}` };
  try {
    const listed = await fetch(`${api}/vhosts/${encodeURIComponent(vhost)}/permissions`, { headers });
    if (!listed.ok) return;
    for (const { user } of await listed.json()) {
      if (!/^conduit-(ep|uep|tg)-/.test(user)) continue;
      await fetch(`${api}/users/${encodeURIComponent(user)}`, { method: "DELETE", headers });
    }
  } catch {
    // No management API: no scoped accounts were made either.
  }
}

/** What the broker counted on a vhost so far: messages published, delivered (or got), acked, confirmed. */
export async function vhostMessageStats(vhostUrl) {
  const name = decodeURIComponent(new URL(vhostUrl).pathname.slice(1)) || "/";
  const res = await fetch(`http://127.0.0.1:${MANAGEMENT_PORT}/api/vhosts/${encodeURIComponent(name)}`, {
    headers: { authorization: `Basic ${Buffer.from("guest:guest").toString("base64")}` },
  });
  if (!res.ok) throw new Error(`the management API answered ${res.status} for vhost ${name}`);
  const stats = (await res.json()).message_stats ?? {};
  return {
    publish: stats.publish ?? 0,
    deliver: stats.deliver_get ?? 0,
    ack: stats.ack ?? 0,
    confirm: stats.confirm ?? 0,
  };
}

/**
 * A RabbitMQ virtual host of its own, for a test's service. A Conduit
 * deployment owns its vhost: two services with different stores on one vhost
 * would consume (and drop) each other's results. Set CONDUIT_TEST_AMQP_URL to
 * use a given URL instead.
 */
export async function createVhost() {
  const preset = process.env.CONDUIT_TEST_AMQP_URL;
  if (preset) return { url: preset, dispose: async () => {} };
  const name = `conduit_test_${randomBytes(6).toString("hex")}`;
  await execFileAsync("rabbitmqctl", ["-q", "add_vhost", name]);
  await execFileAsync("rabbitmqctl", ["-q", "set_permissions", "-p", name, "guest", ".*", ".*", ".*"]);
  return {
    url: `amqp://guest:guest@127.0.0.1:5672/${encodeURIComponent(name)}`,
    dispose: async () => {
      await deleteScopedAccounts(name);
      await execFileAsync("rabbitmqctl", ["-q", "delete_vhost", name]).catch(() => {});
    },
  };
}

/**
 * A throwaway RabbitMQ user with full rights on the vhost of `vhostUrl` (for
 * tests that publish as someone other than the service); its URL logs in as it.
 */
export async function createBrokerUser(vhostUrl) {
  const url = new URL(vhostUrl);
  const vhost = decodeURIComponent(url.pathname.slice(1)) || "/";
  const name = `conduit_test_user_${randomBytes(6).toString("hex")}`;
  const password = randomBytes(12).toString("hex");
  await execFileAsync("rabbitmqctl", ["-q", "add_user", name, password]);
  await execFileAsync("rabbitmqctl", ["-q", "set_permissions", "-p", vhost, name, ".*", ".*", ".*"]);
  url.username = name;
  url.password = password;
  return {
    name,
    url: url.toString(),
    dispose: async () => {
      await execFileAsync("rabbitmqctl", ["-q", "delete_user", name]).catch(() => {});
    },
  };
}

function collect(child) {
  const out = { stdout: "", stderr: "" };
  child.stdout?.setEncoding("utf8").on("data", (d) => {
    out.stdout += d;
  });
  child.stderr?.setEncoding("utf8").on("data", (d) => {
    out.stderr += d;
  });
  return out;
}

function exited(child) {
  return child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once("exit", () => resolve()));
}

/** Sends SIGTERM and waits for the exit (SIGKILL after `graceMs`). */
export async function stopProcess(child, graceMs = 15_000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited(child);
  clearTimeout(timer);
}

/** Runs `conduit-endpoint ARGS` to completion. */
export function runEndpointCli(args, env) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [ENDPOINT_BIN, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    const out = collect(child);
    child.once("exit", (code) => resolve({ code, ...out }));
  });
}

/** Starts `conduit-service start` and waits for /healthz. */
export async function startService({ env, port, args = [] }) {
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [SERVICE_BIN, "start", "--port", String(port), ...args], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const out = collect(child);
  try {
    await waitFor(
      "the service answering /healthz",
      async () => {
        if (child.exitCode !== null) {
          throw new Error(`conduit-service exited with ${child.exitCode}: ${out.stderr.trim() || out.stdout.trim()}`);
        }
        try {
          return (await fetch(`${url}/healthz`)).ok;
        } catch {
          return false;
        }
      },
      60_000,
    );
  } catch (err) {
    await stopProcess(child);
    throw err;
  }
  return { url, child, output: out, stop: () => stopProcess(child) };
}

/** Starts `conduit-endpoint start NAME` (attached) and waits for its endpoint id. */
export async function startEndpoint({ env, name, args = [] }) {
  const child = spawn(process.execPath, [ENDPOINT_BIN, "start", name, ...args], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const out = collect(child);
  let endpointId;
  try {
    await waitFor(
      `endpoint ${name} printing its id`,
      () => {
        if (child.exitCode !== null) {
          throw new Error(`conduit-endpoint start exited with ${child.exitCode}: ${out.stderr.trim()}`);
        }
        endpointId = />>> Endpoint ID: ([0-9a-f-]{36}) <<</.exec(out.stdout)?.[1];
        return endpointId !== undefined;
      },
      60_000,
    );
  } catch (err) {
    await stopProcess(child);
    throw err;
  }
  return { endpointId, child, output: out, stop: () => stopProcess(child) };
}

/**
 * The whole stack in `userDir`: service (PGlite under userDir/service unless
 * serviceArgs says otherwise), one configured and started endpoint. With
 * `isolated`, the service gets a RabbitMQ vhost of its own (tests running side
 * by side); `stop()` deletes it.
 */
export async function startLocalStack({
  userDir,
  endpointName = "my_endpoint",
  serviceArgs = [],
  isolated = false,
  log = () => {},
}) {
  await ensureRabbitMQ(log);
  // The service finds the management API itself, unless told where it is or to share its own account.
  if (!serviceArgs.some((a) => a === "--shared-broker-account" || a === "--amqp-management-url")) {
    await ensureManagementApi(log);
  }
  const vhost = isolated ? await createVhost() : undefined;
  if (vhost) serviceArgs = ["--amqp-url", vhost.url, ...serviceArgs];
  const env = { ...process.env, CONDUIT_USER_DIR: userDir };
  delete env.CONDUIT_SERVICE_URL;
  delete env.CONDUIT_TOKEN;
  const port = await freePort();
  log(`Starting the service on port ${port} ...`);
  let service;
  try {
    service = await startService({ env, port, args: serviceArgs });
  } catch (err) {
    await vhost?.dispose();
    throw err;
  }
  try {
    if (!existsSync(join(userDir, endpointName, "config.yaml"))) {
      const configured = await runEndpointCli(["configure", endpointName], env);
      if (configured.code !== 0) throw new Error(`conduit-endpoint configure failed: ${configured.stderr.trim()}`);
    }
    log(`Starting endpoint ${endpointName} ...`);
    const endpoint = await startEndpoint({ env, name: endpointName });
    return {
      env,
      /** The stack's own vhost's URL, when `isolated`. */
      amqpUrl: vhost?.url,
      serviceUrl: service.url,
      endpointId: endpoint.endpointId,
      service,
      endpoint,
      async stop() {
        await endpoint.stop();
        await service.stop();
        await vhost?.dispose();
      },
    };
  } catch (err) {
    await service.stop();
    await vhost?.dispose();
    throw err;
  }
}

/**
 * An HA authentication policy (in a new project) and an HA subscription, made by
 * the service's administrator over REST: the registration keys an endpoint with
 * `high_assurance: true` must name.
 */
export async function createHighAssuranceKeys(serviceUrl, adminToken) {
  const post = async (path, body) => {
    const response = await fetch(`${serviceUrl}/v1/${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`POST /v1/${path}: ${response.status} ${await response.text()}`);
    return response.json();
  };
  const project = await post("projects", { display_name: "High Assurance" });
  const policy = await post("auth_policies", { project_id: project.id, display_name: "HA", high_assurance: true });
  const subscription = await post("subscriptions", { display_name: "HA", high_assurance: true });
  return { high_assurance: true, authentication_policy: policy.id, subscription_id: subscription.id };
}
