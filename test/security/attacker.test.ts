/**
 * The trust boundaries on the broker, played by an attacker with an ordinary
 * API token (issue 15). The setup is the production one: a RabbitMQ node of
 * its own whose `guest` account is deleted, the service with scoped broker
 * accounts (the default), and a multi-user endpoint, run as root from an
 * installed prefix, that maps alice@example.org and bob@example.org to two
 * different local users. Bob attacks Alice with what he can lawfully get:
 * his task group's credentials from a submit, the accounts of a throwaway
 * endpoint of his own (its MEP's and a UEP's), and, from inside a task of his
 * on the shared endpoint, his own UEP's broker URL read from
 * `/proc/<UEP pid>/mem`. Every attack is refused, nothing he sends is stored,
 * and Alice's task ends with its genuine result.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  commandQueue,
  HEARTBEATS_EXCHANGE,
  heartbeatsRoutingKey,
  JSON_DATA,
  RESULTS_EXCHANGE,
  resultsRoutingKey,
  TASKS_EXCHANGE,
  taskGroupResultQueue,
  uepTaskQueue,
} from "@conduit/protocol";
import { Client, Executor } from "@conduit/sdk";
import type { RunningService } from "@conduit/service";
import amqp from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createUser,
  installedCli,
  type LocalTestUser,
  removeUsersAndGroups,
  uepPids,
} from "../../packages/endpoint/test/multi-user.helpers.js";
import { startThrowawayRabbitMQ, type ThrowawayRabbitMQ } from "../chaos/throwaway.js";

const asRoot = process.getuid?.() === 0;

/** What a broker operation ended with: "ok", or the AMQP reply code that refused it (403, 406, …). */
type Outcome = "ok" | number;

/** Runs `attack` on a fresh connection with `url`; the AMQP code of the refusal, or "ok". */
async function tryOnBroker(url: string, attack: (channel: amqp.ConfirmChannel) => Promise<unknown>): Promise<Outcome> {
  let connection: amqp.ChannelModel;
  try {
    connection = await amqp.connect(url);
  } catch (err) {
    // A refused login (deleted or unknown account) is 403 ACCESS_REFUSED too.
    return /ACCESS_REFUSED|403/.test(String(err)) ? 403 : Number.NaN;
  }
  connection.on("error", () => {});
  try {
    const channel = await connection.createConfirmChannel();
    const closed = new Promise<number>((resolve) =>
      channel.once("error", (err: { code?: number }) => resolve(err.code ?? Number.NaN)),
    );
    channel.on("error", () => {});
    const outcome = await Promise.race([
      attack(channel).then(
        () => channel.waitForConfirms().then(() => "ok" as const),
        (err: { code?: number }) => err.code ?? Number.NaN,
      ),
      closed,
    ]);
    // A refused publish closes the channel asynchronously: give it a moment to say so.
    if (outcome === "ok") return await Promise.race([closed, sleep(300).then(() => "ok" as const)]);
    return outcome;
  } catch (err) {
    return (err as { code?: number }).code ?? Number.NaN;
  } finally {
    await connection.close().catch(() => {});
  }
}

function publish(channel: amqp.ConfirmChannel, exchange: string, key: string, body: unknown, userId?: string) {
  return new Promise<void>((resolve, reject) => {
    channel.publish(
      exchange,
      key,
      Buffer.from(JSON.stringify(body)),
      { persistent: true, contentType: "application/json", ...(userId ? { userId } : {}) },
      (err) => (err ? reject(err) : resolve()),
    );
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitUntil<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs / 1000} s`);
    await sleep(200);
  }
}

function userOf(url: string): string {
  return decodeURIComponent(new URL(url).username);
}

/**
 * Runs as Bob's task on the shared endpoint (shipped as source: Node globals
 * only). Finds its UEP among its ancestors, scans that process's writable
 * memory for the UEP's broker URL, and tries Alice's UEP's memory too.
 */
async function stealUepUrl(): Promise<{ url: string | null; uepPid: number; otherReadable: string[] }> {
  const fs = (process as unknown as { getBuiltinModule(id: string): typeof import("node:fs") }).getBuiltinModule(
    "node:fs",
  );
  const parentOf = (pid: number) => Number(fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ")[1]);
  const isUep = (pid: number) => fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("conduit UEP uep.");
  let uepPid = process.pid;
  while (uepPid > 1 && !isUep(uepPid)) uepPid = parentOf(uepPid);
  const scan = (pid: number): string | null => {
    const fd = fs.openSync(`/proc/${pid}/mem`, "r");
    try {
      const pattern = /amqps?:\/\/conduit-uep-[0-9a-f-]{36}:[A-Za-z0-9_%-]+@[^\s"'\\\x00]+/;
      for (const line of fs.readFileSync(`/proc/${pid}/maps`, "utf8").split("\n")) {
        const m = /^([0-9a-f]+)-([0-9a-f]+) rw/.exec(line);
        if (!m) continue;
        const start = BigInt(`0x${m[1]}`);
        const end = BigInt(`0x${m[2]}`);
        const chunk = 1 << 22;
        for (let at = start; at < end; at += BigInt(chunk)) {
          const length = Number(end - at < BigInt(chunk) ? end - at : BigInt(chunk));
          const buffer = Buffer.alloc(length + 256);
          let read = 0;
          try {
            read = fs.readSync(fd, buffer, 0, Math.min(length + 256, Number(end - at)), at);
          } catch {
            break;
          }
          const found = pattern.exec(buffer.subarray(0, read).toString("latin1"));
          if (found) return found[0];
        }
      }
      return null;
    } finally {
      fs.closeSync(fd);
    }
  };
  const otherReadable: string[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === uepPid) continue;
    try {
      if (!isUep(Number(entry))) continue;
      fs.closeSync(fs.openSync(`/proc/${entry}/mem`, "r"));
      otherReadable.push(entry);
    } catch {
      // another local user's UEP: not readable, as it must be
    }
  }
  return { url: uepPid > 1 ? scan(uepPid) : null, uepPid, otherReadable };
}

describe.skipIf(!asRoot)("an attacker with an ordinary token, in the scoped setup", () => {
  let rabbit: ThrowawayRabbitMQ;
  let service: RunningService;
  let dataDir: string;
  let userDir: string;
  let alice: LocalTestUser;
  let bob: LocalTestUser;
  let mep: ChildProcess | undefined;
  let endpointId = "";
  const executors: Executor[] = [];
  let aliceClient: Client;
  let bobClient: Client;
  /** Alice's long task on the shared endpoint, running while Bob attacks. */
  let aliceTask: { taskId: string; result: Promise<unknown>; taskGroupId: string };
  /** Bob's lawful credentials. */
  const bob$ = { taskGroupUrl: "", endpointId: "", endpointUrl: "", uepUrl: "", stolenUepUrl: "" };

  beforeAll(async () => {
    const cli = installedCli();
    rabbit = await startThrowawayRabbitMQ({ management: true, withoutGuest: true });
    const { startService } = await import("@conduit/service");
    dataDir = mkdtempSync(join(tmpdir(), "conduit-attack-svc-"));
    service = await startService({
      port: 0,
      dataDir,
      writeCredentials: false,
      logLevel: "silent",
      amqpUrl: rabbit.adminAmqpUrl,
      amqpManagementUrl: rabbit.adminManagementUrl,
    });
    alice = createUser();
    bob = createUser();
    userDir = mkdtempSync(join(tmpdir(), "conduit-attack-mu-"));
    const env = {
      ...process.env,
      CONDUIT_USER_DIR: userDir,
      CONDUIT_SERVICE_URL: service.url,
      CONDUIT_TOKEN: service.adminToken,
    };
    const configure = spawn(cli, ["configure", "shared", "--multi-user"], { env, stdio: "ignore" });
    expect(await new Promise((r) => configure.once("exit", r))).toBe(0);
    const epDir = join(userDir, "shared");
    writeFileSync(
      join(epDir, "idmap.json"),
      JSON.stringify([
        {
          DATA_TYPE: "expression_identity_mapping#1.0.0",
          mappings: [
            { source: "{username}", match: "alice@example\\.org", output: alice.name },
            { source: "{username}", match: "bob@example\\.org", output: bob.name },
          ],
        },
      ]),
    );
    const config = readFileSync(join(epDir, "config.yaml"), "utf8").replace(
      /^identity_mapping_config_path:.*$/m,
      "identity_mapping_config_path: idmap.json",
    );
    writeFileSync(join(epDir, "config.yaml"), config);
    mep = spawn(cli, ["start", "shared"], { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    mep.stdout?.setEncoding("utf8").on("data", (d: string) => {
      out += d;
    });
    mep.stderr?.setEncoding("utf8").on("data", (d: string) => {
      out += d;
    });
    endpointId = await waitUntil(
      "the multi-user endpoint printing its id",
      async () => {
        if (mep?.exitCode !== null) throw new Error(`The MEP exited: ${out}`);
        return /Endpoint ID: ([0-9a-f-]{36})/.exec(out)?.[1];
      },
      60_000,
    );

    const a = await service.createIdentity("alice@example.org");
    const b = await service.createIdentity("bob@example.org");
    aliceClient = new Client({ serviceUrl: service.url, token: a.token });
    bobClient = new Client({ serviceUrl: service.url, token: b.token });

    // Alice's task: running for a while, then returning its genuine value.
    const aliceEx = new Executor({ endpointId, client: aliceClient });
    executors.push(aliceEx);
    const future = aliceEx.submit(() => new Promise((resolve) => setTimeout(() => resolve("genuine"), 25_000)));
    const result = future.result();
    result.catch(() => {});
    // The Executor submits in batches: the task may not be known for a moment.
    await waitUntil("Alice's task running", async () => {
      const state = await aliceClient.getTask(future.taskId).then(
        (t) => t.state,
        () => undefined,
      );
      return state === "running" ? true : undefined;
    });
    aliceTask = {
      taskId: future.taskId,
      result,
      taskGroupId: (await aliceClient.getTask(future.taskId)).task_group_id,
    };

    // Bob's lawful credentials: a task group account (from a submit), a
    // throwaway endpoint of his own (its MEP account), and the UEP account the
    // service sends that endpoint in a start command.
    const bobOwn = await bobClient.registerEndpoint({ name: "bobs-own" });
    bob$.endpointId = bobOwn.endpoint_id;
    bob$.endpointUrl = bobOwn.amqp.url;
    const functionId = await bobClient.registerFunction(() => 1);
    const submitted = await bobClient.submit(bob$.endpointId, {
      tasks: [{ task_id: crypto.randomUUID(), function_id: functionId, args: { strategy: JSON_DATA, data: "[]" } }],
    });
    bob$.taskGroupUrl = submitted.amqp.url;
    const connection = await amqp.connect(bob$.endpointUrl);
    try {
      const channel = await connection.createChannel();
      const command = await waitUntil("the start command on Bob's endpoint queue", async () => {
        const m = await channel.get(commandQueue(bob$.endpointId), { noAck: true });
        return m ? (JSON.parse(m.content.toString()) as { amqpUrl?: string }) : undefined;
      });
      bob$.uepUrl = command.amqpUrl ?? "";
    } finally {
      await connection.close();
    }
  }, 240_000);

  afterAll(async () => {
    for (const e of executors) await e.shutdown({ wait: false, cancelFutures: true }).catch(() => {});
    if (mep && mep.exitCode === null) {
      mep.kill("SIGTERM");
      await new Promise((resolve) => {
        const t = setTimeout(() => {
          mep?.kill("SIGKILL");
          resolve(undefined);
        }, 15_000);
        mep?.once("exit", () => {
          clearTimeout(t);
          resolve(undefined);
        });
      });
    }
    for (const pid of uepPids(endpointId)) {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    await service?.close();
    await rabbit?.stop();
    for (const dir of [dataDir, userDir]) if (dir) rmSync(dir, { recursive: true, force: true });
    removeUsersAndGroups();
  }, 120_000);

  it("gets scoped accounts only: a task group account for a submit, its own accounts for its endpoint", () => {
    const serviceUser = userOf(rabbit.adminAmqpUrl);
    for (const [name, url] of Object.entries(bob$).filter(([name, url]) => name.endsWith("Url") && url !== "")) {
      expect(url, name).toMatch(/^amqps?:\/\/[^:@/]+:[^@]+@/);
      expect(userOf(url), name).not.toBe(serviceUser);
    }
    expect(userOf(bob$.taskGroupUrl)).toMatch(/^conduit-tg-/);
    expect(userOf(bob$.endpointUrl)).toBe(`conduit-ep-${bob$.endpointId}`);
    expect(userOf(bob$.uepUrl)).toMatch(/^conduit-uep-/);
  });

  it("cannot log in as guest/guest, nor reach the results or commands of others with a task group account", async () => {
    const guest = new URL(rabbit.adminAmqpUrl);
    guest.username = "guest";
    guest.password = "guest";
    expect(await tryOnBroker(guest.toString(), async () => {})).toBe(403);
    const url = bob$.taskGroupUrl;
    // Bind a queue of his own to every result.
    expect(
      await tryOnBroker(url, async (ch) => {
        const q = await ch.assertQueue("", { exclusive: true });
        await ch.bindQueue(q.queue, RESULTS_EXCHANGE, "#");
      }),
    ).toBe(403);
    // Read Alice's task group's queue.
    expect(await tryOnBroker(url, (ch) => ch.consume(taskGroupResultQueue(aliceTask.taskGroupId), () => {}))).toBe(403);
    // Send the shared endpoint a start command naming Alice.
    expect(
      await tryOnBroker(url, (ch) =>
        publish(ch, TASKS_EXCHANGE, commandQueue(endpointId), { v: 1, kind: "start_uep" }, userOf(url)),
      ),
    ).toBe(403);
    // Declare a UEP task queue.
    expect(await tryOnBroker(url, (ch) => ch.assertQueue(`uep.${endpointId}.${crypto.randomUUID()}.tasks`))).toBe(403);
  });

  it("cannot publish on another endpoint's routing keys with his endpoint's or UEP's account", async () => {
    for (const url of [bob$.endpointUrl, bob$.uepUrl]) {
      const forged = forgedResult(aliceTask.taskId, endpointId);
      expect(
        await tryOnBroker(url, (ch) =>
          publish(ch, RESULTS_EXCHANGE, resultsRoutingKey(endpointId), forged, userOf(url)),
        ),
      ).toBe(403);
      const beat = { v: 1, kind: "heartbeat", role: "mep", endpointId, period: 0, sentAt: Date.now() };
      expect(
        await tryOnBroker(url, (ch) =>
          publish(ch, HEARTBEATS_EXCHANGE, heartbeatsRoutingKey(endpointId), beat, userOf(url)),
        ),
      ).toBe(403);
      // Impersonating the service in user-id is refused by RabbitMQ itself.
      expect(
        await tryOnBroker(url, (ch) =>
          publish(ch, RESULTS_EXCHANGE, resultsRoutingKey(bob$.endpointId), forged, userOf(rabbit.adminAmqpUrl)),
        ),
      ).toBe(406);
    }
  });

  it("cannot complete Alice's task or take her endpoint offline through his own routing keys", async () => {
    for (const url of [bob$.endpointUrl, bob$.uepUrl]) {
      for (const bodyEndpoint of [endpointId, bob$.endpointId]) {
        const forged = forgedResult(aliceTask.taskId, bodyEndpoint);
        const batch = { v: 1, kind: "results", results: [forged] };
        const running = {
          v: 1,
          kind: "task_status",
          state: "running",
          endpointId: bodyEndpoint,
          taskIds: [aliceTask.taskId],
        };
        for (const message of [forged, batch, running]) {
          expect(
            await tryOnBroker(url, (ch) =>
              publish(ch, RESULTS_EXCHANGE, resultsRoutingKey(bob$.endpointId), message, userOf(url)),
            ),
          ).toBe("ok");
        }
        // Without user-id: accepted by RabbitMQ, refused by the service.
        expect(
          await tryOnBroker(url, (ch) => publish(ch, RESULTS_EXCHANGE, resultsRoutingKey(bob$.endpointId), forged)),
        ).toBe("ok");
      }
      const beat = { v: 1, kind: "heartbeat", role: "mep", endpointId, period: 0, sentAt: Date.now() };
      expect(
        await tryOnBroker(url, (ch) =>
          publish(ch, HEARTBEATS_EXCHANGE, heartbeatsRoutingKey(bob$.endpointId), beat, userOf(url)),
        ),
      ).toBe("ok");
    }
    await sleep(1500);
    expect((await aliceClient.getTask(aliceTask.taskId)).state).toBe("running");
    expect((await aliceClient.getEndpointStatus(endpointId)).status).toBe("online");
  });

  it("reads only his own UEP's memory from a task, and the URL found there cannot touch Alice's task", async () => {
    const bobEx = new Executor({ endpointId, client: bobClient });
    executors.push(bobEx);
    const loot = (await bobEx.submit(stealUepUrl).result()) as Awaited<ReturnType<typeof stealUepUrl>>;
    // The task ran as Bob and found his UEP's account in its memory: the URL travels on stdin, so it is there.
    expect(loot.url, `no UEP URL in the memory of UEP ${loot.uepPid}`).toMatch(/^amqps?:\/\/conduit-uep-/);
    // Alice's UEP runs as another local user: its memory is out of reach.
    expect(loot.otherReadable).toEqual([]);
    const url = (loot.url ?? "").replace(/127\.0\.0\.1:\d+/, `127.0.0.1:${rabbit.port}`);
    bob$.stolenUepUrl = url;
    const forged = forgedResult(aliceTask.taskId, endpointId);
    // On the shared endpoint's own routing key, the account is allowed to publish: the service must refuse it.
    expect(
      await tryOnBroker(url, (ch) => publish(ch, RESULTS_EXCHANGE, resultsRoutingKey(endpointId), forged, userOf(url))),
    ).toBe("ok");
    const beat = { v: 1, kind: "heartbeat", role: "mep", endpointId, period: 0, sentAt: Date.now() };
    expect(
      await tryOnBroker(url, (ch) =>
        publish(ch, HEARTBEATS_EXCHANGE, heartbeatsRoutingKey(endpointId), beat, userOf(url)),
      ),
    ).toBe("ok");
    // Nor can it read or feed Alice's UEP's queue.
    const aliceUep = (await service.store.getTask(aliceTask.taskId))?.uepId ?? "";
    const aliceQueue = uepTaskQueue(endpointId, aliceUep);
    expect(await tryOnBroker(url, (ch) => ch.consume(aliceQueue, () => {}))).toBe(403);
    expect(
      await tryOnBroker(url, (ch) => publish(ch, TASKS_EXCHANGE, aliceQueue, { v: 1, kind: "task" }, userOf(url))),
    ).toBe(403);
    await sleep(1500);
    expect((await aliceClient.getTask(aliceTask.taskId)).state).toBe("running");
    expect((await aliceClient.getEndpointStatus(endpointId)).status).toBe("online");
  }, 90_000);

  it("leaves Alice's task to end with its genuine result, and the service and endpoint serving", async () => {
    expect(await aliceTask.result).toBe("genuine");
    const stored = await aliceClient.getTask(aliceTask.taskId);
    expect(stored.state).toBe("success");
    expect((await fetch(`${service.url}/healthz`)).ok).toBe(true);
    const again = new Executor({ endpointId, client: aliceClient });
    executors.push(again);
    expect(await again.submit((a: number, b: number) => a + b, 30, 12).result()).toBe(42);
  }, 60_000);
});

function forgedResult(taskId: string, endpointId: string) {
  return {
    v: 1,
    kind: "result",
    taskId,
    endpointId,
    uepId: crypto.randomUUID(),
    state: "success",
    result: { strategy: JSON_DATA, data: JSON.stringify("forged") },
    completedAt: Date.now(),
  };
}
