#!/usr/bin/env node
/**
 * `npm run bench:floor`: what Conduit's durable round trip (figure (a)) must
 * pay on this machine, part by part, next to the two-hop durable echo that
 * (a)'s goal is stated against. Each part is measured alone, one at a time,
 * p50 and p99 of FLOOR_SAMPLES (default 500) after 50 warm-up:
 *
 * - `http`: a small JSON POST answered by a bare `node:http` server in another
 *   process (keep-alive), as the SDK's submit is;
 * - `hop`: one durable RabbitMQ hop: a persistent message on a durable queue,
 *   from the publish to its delivery to a consumer in another process; and
 *   `confirm`, the publisher confirm of such a message, which a sender waits
 *   for before it may say the message is safe;
 * - `commit`: one single-row INSERT committed by the store the service runs:
 *   PGlite in its worker thread (fsync off, as the service runs it) and
 *   Postgres (synchronous_commit on);
 * - `tls` and `ipc`: the engine's two process hops, an echo of one JSON line
 *   over TLS on loopback (interchange → block manager) and over a child's IPC
 *   pipe (block manager → worker);
 * - `echo`: the two-hop durable echo of `peers/floor.mjs` ((a)'s floor).
 *
 * Conduit's path for one task, in order on the critical path: the submit's
 * HTTP request, the task's hop to the UEP (the insert and the confirm run
 * beside it), the engine's TLS and IPC round trips, the result's hop to the
 * service, its hop to the Executor (its commit runs beside that hop). The
 * sum of those medians is the floor of the design: durable at every hop.
 * Nothing is asserted; it prints a table and the sum ÷ the echo, and the sum
 * with the result's commit added (what it was before results were forwarded
 * while stored).
 */
import { fork } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { Agent, createServer as httpServer, request } from "node:http";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import amqp from "amqplib";
import pg from "pg";
import { createVhost, ensureRabbitMQ } from "../scripts/local-stack.mjs";
import { percentile } from "./stats.mjs";

const SELF = fileURLToPath(import.meta.url);
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SAMPLES = Number(process.env.FLOOR_SAMPLES ?? 500);
const WARMUP = 50;
const POSTGRES_URL = process.env.CONDUIT_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

/** p50 and p99 (ms) of `once` called SAMPLES times, one at a time, after WARMUP calls. */
async function sample(once) {
  for (let i = 0; i < WARMUP; i++) await once();
  const ms = [];
  for (let i = 0; i < SAMPLES; i++) {
    const t = performance.now();
    const measured = await once();
    ms.push(typeof measured === "number" ? measured : performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  return { p50: percentile(ms, 50), p99: percentile(ms, 99) };
}

function child(...args) {
  const proc = fork(SELF, ["serve", ...args], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const first = new Promise((resolve) => proc.once("message", resolve));
  return { proc, first };
}

async function httpPart() {
  const { proc, first } = child("http");
  const { port } = await first;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const body = JSON.stringify({ tasks: [{ function_id: randomUUID(), args: "[]" }] });
  const post = () =>
    new Promise((resolve, reject) => {
      const req = request(
        {
          port,
          host: "127.0.0.1",
          method: "POST",
          path: "/v2/submit",
          agent,
          headers: { "content-type": "application/json" },
        },
        (res) => {
          res.resume();
          res.on("end", resolve);
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  try {
    return await sample(post);
  } finally {
    agent.destroy();
    proc.kill();
  }
}

async function brokerParts(url) {
  const queue = `floor.${randomUUID()}`;
  const connection = await amqp.connect(url, { noDelay: true });
  const channel = await connection.createConfirmChannel();
  await channel.assertQueue(queue, { durable: true });
  const { proc, first } = child("consumer", url, queue);
  await first;
  const delivered = new Map();
  proc.on("message", (m) => delivered.get(m.id)?.(m.at));
  let n = 0;
  // publish → delivery in the other process (both clocks are this machine's: timeOrigin + now).
  const hop = () =>
    new Promise((resolve, reject) => {
      const id = String(n++);
      const sent = performance.timeOrigin + performance.now();
      delivered.set(id, (at) => {
        delivered.delete(id);
        resolve(at - sent);
      });
      channel.sendToQueue(
        queue,
        Buffer.from("{}"),
        { persistent: true, correlationId: id },
        (err) => err && reject(err),
      );
    });
  const confirmOnly = async () => {
    const t = performance.now();
    let confirmedAt = 0;
    await new Promise((resolve, reject) => {
      const id = String(n++);
      const delivery = new Promise((r) => delivered.set(id, r));
      channel.sendToQueue(queue, Buffer.from("{}"), { persistent: true, correlationId: id }, (err) => {
        if (err) return reject(err);
        confirmedAt = performance.now();
        delivery.then(resolve);
      });
    });
    return confirmedAt - t;
  };
  try {
    return { hop: await sample(hop), confirm: await sample(confirmOnly) };
  } finally {
    proc.kill();
    await channel.deleteQueue(queue).catch(() => {});
    await connection.close();
  }
}

async function echoPart(url) {
  const floor = await import("./peers/floor.mjs");
  const ctx = { vhost: async () => ({ url }) };
  const { configs } = await floor.prepare(ctx);
  const durable = configs.find((c) => c.id === "durable");
  const result = await durable.run({ warmup: WARMUP, roundTrips: SAMPLES, burst: 1 });
  return { p50: result.a_p50, p99: result.a_p99 };
}

const CREATE =
  "CREATE TABLE floor_commit (id uuid PRIMARY KEY, state text NOT NULL, created_at timestamptz DEFAULT now())";
const INSERT = "INSERT INTO floor_commit (id, state) VALUES ($1, 'waiting-for-endpoint')";

async function pgliteCommit() {
  const { openPGlite } = await import(join(ROOT, "packages/service/dist/store/pglite-client.js"));
  const dataDir = mkdtempSync(join(tmpdir(), "conduit-floor-"));
  const client = await openPGlite(dataDir);
  try {
    await client.exec(CREATE);
    return await sample(() => client.query(INSERT, [randomUUID()]));
  } finally {
    await client.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function postgresCommit() {
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  try {
    await admin.connect();
  } catch (err) {
    return { skipped: `Postgres at ${new URL(POSTGRES_URL).host} did not answer (${err.message})` };
  }
  const db = `conduit_floor_${randomUUID().replaceAll("-", "").slice(0, 12)}`;
  await admin.query(`CREATE DATABASE ${db}`);
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${db}`;
  const client = new pg.Client({ connectionString: url.href });
  try {
    await client.connect();
    await client.query(CREATE);
    return await sample(() => client.query(INSERT, [randomUUID()]));
  } finally {
    await client.end();
    await admin.query(`DROP DATABASE ${db}`);
    await admin.end();
  }
}

async function tlsPart() {
  const { createInterchangeTls } = await import(join(ROOT, "packages/endpoint/dist/engines/interchange-tls.js"));
  const dir = mkdtempSync(join(tmpdir(), "conduit-floor-tls-"));
  const credentials = await createInterchangeTls(join(dir, "tls"));
  rmSync(dir, { recursive: true, force: true });
  const { connect } = await import("node:tls");
  const { proc, first } = child(
    "tls",
    JSON.stringify({ key: String(credentials.key), cert: String(credentials.cert) }),
  );
  const { port } = await first;
  const socket = connect({ port, host: "127.0.0.1", rejectUnauthorized: false });
  await new Promise((resolve) => socket.once("secureConnect", resolve));
  socket.setNoDelay(true);
  const line = `${JSON.stringify({ cmd: "task", taskId: randomUUID(), data: "x".repeat(200) })}\n`;
  const echo = () =>
    new Promise((resolve) => {
      socket.once("data", resolve);
      socket.write(line);
    });
  try {
    return await sample(echo);
  } finally {
    socket.destroy();
    proc.kill();
  }
}

async function ipcPart() {
  const { proc, first } = child("ipc");
  await first;
  const message = { cmd: "task", taskId: randomUUID(), data: "x".repeat(200) };
  const echo = () =>
    new Promise((resolve) => {
      proc.once("message", resolve);
      proc.send(message);
    });
  try {
    return await sample(echo);
  } finally {
    proc.kill();
  }
}

async function main() {
  const loadBefore = loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
  await ensureRabbitMQ((line) => console.error(line));
  const vhost = await createVhost();
  const parts = {};
  try {
    console.error("http ...");
    parts.http = await httpPart();
    console.error("broker hop and confirm ...");
    Object.assign(parts, await brokerParts(vhost.url));
    console.error("commit (PGlite, Postgres) ...");
    parts.commitPGlite = await pgliteCommit();
    parts.commitPostgres = await postgresCommit();
    console.error("tls and ipc echoes ...");
    parts.tls = await tlsPart();
    parts.ipc = await ipcPart();
    console.error("two-hop durable echo ...");
    parts.echo = await echoPart(vhost.url);
  } finally {
    await vhost.dispose();
  }
  const fmt = (v) => (v === undefined ? "–" : v.toFixed(2));
  const rows = [
    ["http", "SDK submit: one JSON POST, keep-alive, bare node:http"],
    ["hop", "one durable hop: persistent publish → delivery in another process"],
    ["confirm", "publisher confirm of one persistent message"],
    ["commitPGlite", "one INSERT committed, PGlite in its worker thread (fsync off)"],
    ["commitPostgres", "one INSERT committed, Postgres (synchronous_commit on)"],
    ["tls", "one JSON line echoed over TLS (interchange ⇄ block manager)"],
    ["ipc", "one message echoed over a child's IPC pipe (block manager ⇄ worker)"],
    ["echo", "(a)'s floor: the two-hop durable echo"],
  ];
  console.log(
    `\nload average before: ${loadBefore}; after: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}\n`,
  );
  console.log("| part | what | p50 ms | p99 ms |");
  console.log("| --- | --- | --- | --- |");
  for (const [key, what] of rows) {
    const part = parts[key];
    console.log(
      `| ${key} | ${what} | ${part?.skipped ? `skipped: ${part.skipped}` : fmt(part?.p50)} | ${fmt(part?.p99)} |`,
    );
  }
  const p50 = (keys) => keys.reduce((sum, k) => sum + (parts[k]?.p50 ?? Number.NaN), 0);
  const echo = parts.echo.p50;
  // The submit's insert overlaps the task's hop; the result's commit is on the path (it is stored,
  // then forwarded), unless results are forwarded beside their commit (built, off by default).
  const floor = p50(["http", "hop", "tls", "ipc", "hop", "hop"]);
  console.log("");
  console.log(
    `Conduit's design floor without the result's commit (http + 3 × hop + tls + ipc, p50s): ${fmt(floor)} ms = ${(floor / echo).toFixed(2)} × the two-hop durable echo's p50 (${fmt(echo)} ms)`,
  );
  for (const [store, commit] of [
    ["PGlite", parts.commitPGlite],
    ["Postgres", parts.commitPostgres],
  ]) {
    const sum = floor + (commit?.p50 ?? Number.NaN);
    console.log(
      `  with the result's commit on the path, as Conduit runs (${store}): ${fmt(sum)} ms = ${(sum / echo).toFixed(2)} × the echo`,
    );
  }
  console.log(`FLOOR_JSON ${JSON.stringify({ loadBefore, parts })}`);
}

/** The far ends, each in a process of its own: `node floor-profile.mjs serve <kind> [url]`. */
async function serve(kind) {
  if (kind === "http") {
    const server = httpServer((req, res) => {
      req.resume();
      req.on("end", () => res.setHeader("content-type", "application/json").end('{"ok":true}'));
    });
    server.listen(0, "127.0.0.1", () => process.send({ port: server.address().port }));
  } else if (kind === "consumer") {
    const connection = await amqp.connect(process.argv[4], { noDelay: true });
    const channel = await connection.createChannel();
    await channel.prefetch(200);
    await channel.consume(process.argv[5], (msg) => {
      if (!msg) return;
      channel.ack(msg);
      process.send({ id: msg.properties.correlationId, at: performance.timeOrigin + performance.now() });
    });
    process.send({ ready: true });
  } else if (kind === "tls") {
    const { createServer } = await import("node:tls");
    const { key, cert } = JSON.parse(process.argv[4]);
    const server = createServer({ key, cert }, (socket) => {
      socket.setNoDelay(true);
      socket.on("data", (chunk) => socket.write(chunk));
    });
    server.listen(0, "127.0.0.1", () => process.send({ port: server.address().port }));
  } else if (kind === "ipc") {
    process.on("message", (m) => process.send(m));
    process.send({ ready: true });
  }
}

if (process.argv[2] === "serve") await serve(process.argv[3]);
else await main();
