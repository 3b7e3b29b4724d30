/**
 * Every Store behaviour, run against both backends: PGlite in a temp folder and
 * a fresh Postgres database on the shared server.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { endpointBrokerUser, TASK_STATES, uepBrokerUser } from "@conduit/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadMigrations, migrate } from "../src/store/migrate.js";
import { openPGlite } from "../src/store/pglite-client.js";
import { openPostgres } from "../src/store/postgres-client.js";
import type { SqlClient, SqlExecutor, SqlParam, SqlResult } from "../src/store/sql-client.js";
import { Store } from "../src/store/store.js";
import type { TaskBatch } from "../src/store/store-types.js";
import { INLINE_RESULT_MAX } from "../src/store/task-reports.js";
import { createPostgresDatabase, createTempDir, type Throwaway } from "./helpers/databases.js";

/** Counts statements, to prove that batch operations are one round trip. */
class CountingClient implements SqlClient {
  statements = 0;
  constructor(private readonly inner: SqlClient) {}
  get description(): string {
    return this.inner.description;
  }
  query<T>(sql: string, params?: readonly SqlParam[]): Promise<SqlResult<T>> {
    this.statements++;
    return this.inner.query<T>(sql, params);
  }
  exec(sql: string): Promise<void> {
    this.statements++;
    return this.inner.exec(sql);
  }
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.inner.transaction(fn);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

interface Backend {
  name: string;
  open(): Promise<{ client: SqlClient; second?: () => Promise<SqlClient>; dispose(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: "PGlite",
    async open() {
      const dir = await createTempDir();
      const client = await openPGlite(dir.value);
      return {
        client,
        async dispose() {
          await client.close();
          await dir.dispose();
        },
      };
    },
  },
  {
    name: "Postgres",
    async open() {
      const db: Throwaway<string> = await createPostgresDatabase();
      const client = await openPostgres(db.value);
      const others: SqlClient[] = [];
      return {
        client,
        second: async () => {
          const other = await openPostgres(db.value);
          others.push(other);
          return other;
        },
        async dispose() {
          await Promise.all([client.close(), ...others.map((o) => o.close())]);
          await db.dispose();
        },
      };
    },
  },
];

const sha = (s: string) => createHash("sha256").update(s).digest("hex");

describe.each(backends)("Store on $name", (backend) => {
  let opened: Awaited<ReturnType<Backend["open"]>>;
  let sql: CountingClient;
  let store: Store;
  let migrationRuns: string[][];

  beforeAll(async () => {
    opened = await backend.open();
    // Two runs at once, as two replicas starting together (Postgres: two pools).
    const again = opened.second ? await opened.second() : opened.client;
    migrationRuns = await Promise.all([migrate(opened.client), migrate(again)]);
    sql = new CountingClient(opened.client);
    store = new Store(sql);
  });
  afterAll(async () => {
    await opened?.dispose();
  });

  /** An identity, an endpoint and a function to hang tasks on. */
  async function fixture(multiUser = false) {
    const owner = await store.createIdentity(`owner-${randomUUID()}@example.org`);
    const endpoint = await store.registerEndpoint({ id: randomUUID(), ownerId: owner.id, name: "ep", multiUser });
    const fn = await store.registerFunction(owner.id, {
      strategy: "conduit.SourceCode",
      data: `() => ${Math.random()}`,
    });
    return { owner, endpoint: endpoint!, fn };
  }

  function batch(
    f: Awaited<ReturnType<typeof fixture>>,
    tasks: Array<{ id?: string; args?: string }>,
    over: Partial<TaskBatch> = {},
  ): TaskBatch {
    return {
      ownerId: f.owner.id,
      endpointId: f.endpoint.id,
      uepId: randomUUID(),
      taskGroupId: randomUUID(),
      taskGroupGiven: false,
      uepConfig: { worker_init: "true" },
      uepRuntime: null,
      tasks: tasks.map((t) => ({
        id: t.id ?? randomUUID(),
        functionId: f.fn.id,
        argsBytes: (t.args ?? "[]").length,
        argsSha256: sha(t.args ?? "[]"),
      })),
      ...over,
    };
  }

  it("applies the migrations once, also when two runs race", async () => {
    const migrations = await loadMigrations();
    expect(migrations.map((m) => m.name)).toContain("0001_initial.sql");
    expect(migrationRuns.flat().sort()).toEqual(migrations.map((m) => m.name));
    expect(await migrate(opened.client, migrations)).toEqual([]);
    const { rows } = await opened.client.query<{ n: number }>("SELECT count(*)::int AS n FROM conduit_migrations");
    expect(rows[0].n).toBe(migrations.length);
  });

  it("checks tasks.state against exactly protocol's TASK_STATES", async () => {
    const { rows } = await opened.client.query<{ def: string }>(
      `SELECT pg_get_constraintdef(c.oid) AS def FROM pg_constraint c
       WHERE c.conrelid = 'tasks'::regclass AND c.contype = 'c' AND pg_get_constraintdef(c.oid) LIKE '%state%'`,
    );
    expect(rows).toHaveLength(1);
    const allowed = [...rows[0].def.matchAll(/'([^']*)'/g)].map((m) => m[1]);
    expect(allowed.sort()).toEqual([...TASK_STATES].sort());
  });

  it("creates identities once per username", async () => {
    const username = `alice-${randomUUID()}@example.org`;
    const alice = await store.createIdentity(username, { name: "Alice", email: "a@example.org" });
    expect(alice).toMatchObject({ username, name: "Alice", email: "a@example.org", organization: null });
    expect((await store.createIdentity(username)).id).toBe(alice.id);
    expect(await store.getIdentity(alice.id)).toEqual(alice);
    expect(await store.findIdentityByUsername(username)).toEqual(alice);
    expect(await store.findIdentityByUsername("nobody@example.org")).toBeUndefined();
  });

  it("keeps only the hash of a token and finds its identity", async () => {
    const bob = await store.createIdentity(`bob-${randomUUID()}@example.org`);
    const token = await store.createToken(bob.id);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await store.identityForToken(token))?.id).toBe(bob.id);
    expect(await store.identityForToken(`${token}x`)).toBeUndefined();
    const { rows } = await opened.client.query<{ token_sha256: string }>(
      "SELECT token_sha256 FROM api_tokens WHERE identity_id = $1::uuid",
      [bob.id],
    );
    expect(rows).toEqual([{ token_sha256: sha(token) }]);
    expect(await store.tokenLastUsed(token)).toBeNull();
    await store.touchToken(token);
    expect(await store.tokenLastUsed(token)).toBeInstanceOf(Date);
  });

  it("keeps a token's expiry: an expired token is found but not its identity, and the admin's list shows each", async () => {
    const carol = await store.createIdentity(`carol-${randomUUID()}@example.org`);
    // Whole milliseconds: timestamptz keeps microseconds, so they come back exactly.
    const later = new Date(Math.floor(Date.now() / 1000) * 1000 + 90 * 86_400_000);
    const past = new Date(Math.floor(Date.now() / 1000) * 1000 - 1_000);
    const forever = await store.createToken(carol.id);
    const lasting = await store.createToken(carol.id, later);
    const expired = await store.createToken(carol.id, past);
    expect(await store.lookupToken(forever)).toEqual({ identity: carol, expiresAt: null });
    expect(await store.lookupToken(lasting)).toEqual({ identity: carol, expiresAt: later });
    expect(await store.lookupToken(expired)).toEqual({ identity: carol, expiresAt: past });
    expect(await store.lookupToken(`${expired}x`)).toBeUndefined();
    expect((await store.identityForToken(lasting))?.id).toBe(carol.id);
    expect(await store.identityForToken(expired)).toBeUndefined();
    const listed = (await store.listTokens()).filter((t) => t.identityId === carol.id);
    expect(listed.map((t) => t.expiresAt).sort((a, b) => (a?.getTime() ?? 0) - (b?.getTime() ?? 0))).toEqual([
      null,
      past,
      later,
    ]);
    for (const t of listed) {
      expect(t.createdAt).toBeInstanceOf(Date);
      expect(t.lastUsedAt).toBeNull();
    }
  });

  it("registers, re-registers and refuses another owner's endpoint id", async () => {
    const owner = await store.createIdentity(`ep-owner-${randomUUID()}@example.org`);
    const other = await store.createIdentity(`ep-other-${randomUUID()}@example.org`);
    const id = randomUUID();
    const first = await store.registerEndpoint({
      id,
      ownerId: owner.id,
      name: "lab",
      allowedFunctions: [randomUUID()],
      metadata: { host: "h1" },
    });
    expect(first).toMatchObject({
      id,
      ownerId: owner.id,
      ownerUsername: owner.username,
      name: "lab",
      displayName: null,
      multiUser: false,
      status: "offline",
      lastHeartbeat: null,
      metadata: { host: "h1" },
    });
    const again = await store.registerEndpoint({
      id,
      ownerId: owner.id,
      name: "lab2",
      displayName: "Lab",
      multiUser: true,
    });
    expect(again).toMatchObject({ id, name: "lab2", displayName: "Lab", multiUser: true, allowedFunctions: null });
    expect(await store.registerEndpoint({ id, ownerId: other.id, name: "stolen" })).toBeUndefined();
    expect((await store.getEndpoint(id))?.name).toBe("lab2");
    expect((await store.listEndpoints(owner.id)).map((e) => e.id)).toEqual([id]);
    expect(await store.listEndpoints(other.id)).toEqual([]);
    expect(await store.getEndpoint(randomUUID())).toBeUndefined();
  });

  it("derives endpoint status from heartbeats", async () => {
    const { endpoint } = await fixture();
    expect(await store.recordEndpointHeartbeat(endpoint.id, 30)).toBe(true);
    const online = await store.getEndpoint(endpoint.id);
    expect(online).toMatchObject({ status: "online", heartbeatPeriod: 30 });
    expect(online?.lastHeartbeat).toBeInstanceOf(Date);
    // Heartbeats that stopped three periods ago: offline.
    await opened.client.query(
      "UPDATE endpoints SET last_heartbeat = now() - interval '91 seconds' WHERE id = $1::uuid",
      [endpoint.id],
    );
    expect((await store.getEndpoint(endpoint.id))?.status).toBe("offline");
    await store.recordEndpointHeartbeat(endpoint.id, 30);
    expect((await store.getEndpoint(endpoint.id))?.status).toBe("online");
    const error = { code: "UEP_START_FAILED", name: "Error", message: "template did not render" };
    await store.recordEndpointHeartbeat(endpoint.id, 0, error);
    expect(await store.getEndpoint(endpoint.id)).toMatchObject({
      status: "offline",
      heartbeatPeriod: 0,
      lastError: error,
    });
    expect(await store.recordEndpointHeartbeat(randomUUID(), 30)).toBe(false);
  });

  it("keeps one id per payload and owner", async () => {
    const a = await store.createIdentity(`fa-${randomUUID()}@example.org`);
    const b = await store.createIdentity(`fb-${randomUUID()}@example.org`);
    const payload = { strategy: "conduit.SourceCode", data: `(x) => x * ${Math.random()}` };
    const first = await store.registerFunction(a.id, payload, "double");
    expect(first).toMatchObject({
      ownerId: a.id,
      name: "double",
      payload,
      payloadSha256: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect((await store.registerFunction(a.id, payload)).id).toBe(first.id);
    const theirs = await store.registerFunction(b.id, payload);
    expect(theirs.id).not.toBe(first.id);
    const other = await store.registerFunction(a.id, { ...payload, data: `${payload.data} + 1` });
    expect(other.id).not.toBe(first.id);
    const found = await store.getFunctions([first.id, other.id, randomUUID()]);
    expect(found.map((f) => f.id).sort()).toEqual([first.id, other.id].sort());
    expect(await store.getFunction(first.id)).toEqual(first);
  });

  it("keeps High Assurance fixed, one HA function per endpoint, and purges the idle ones on the given clock", async () => {
    const owner = await store.createIdentity(`ha-${randomUUID()}@example.org`);
    const ha = await store.registerEndpoint({ id: randomUUID(), ownerId: owner.id, name: "phi", highAssurance: true });
    expect(ha?.highAssurance).toBe(true);
    // A re-registration that changes it is not applied.
    expect(await store.registerEndpoint({ id: ha!.id, ownerId: owner.id, name: "x" })).toBeUndefined();
    expect(await store.getEndpoint(ha!.id)).toMatchObject({ name: "phi", highAssurance: true });

    const day = 86_400_000;
    const t0 = Date.UTC(2030, 0, 1);
    const payload = { strategy: "conduit.SourceCode", data: `(x) => x - ${Math.random()}` };
    const plain = await store.registerFunction(owner.id, payload);
    const fn = await store.registerFunction(owner.id, payload, null, { haEndpointId: ha!.id, now: t0 });
    expect(fn).toMatchObject({ haEndpointId: ha!.id, payload });
    expect(plain.haEndpointId).toBeNull();
    expect(fn.id).not.toBe(plain.id);
    expect((await store.registerFunction(owner.id, payload)).id).toBe(plain.id);
    const again = await store.registerFunction(owner.id, payload, null, { haEndpointId: ha!.id, now: t0 + day });
    expect(again.id).toBe(fn.id);

    // Last used at t0 + 1 day: alive 90 days later, gone after.
    expect(await store.touchHaFunctions([fn.id, plain.id], t0 + 91 * day, 90 * day)).toEqual(new Set([fn.id]));
    expect(await store.purgeIdleHaFunctions(t0 + 180 * day, 90 * day)).not.toContain(fn.id);
    expect(await store.touchHaFunctions([fn.id], t0 + 182 * day, 90 * day)).toEqual(new Set());
    expect(await store.purgeIdleHaFunctions(t0 + 182 * day, 90 * day)).toContain(fn.id);
    expect(await store.getFunctions([fn.id, plain.id])).toEqual([plain]);
  });

  it("inserts a batch of tasks, its task group and UEP in one statement", async () => {
    const f = await fixture();
    const b = batch(
      f,
      Array.from({ length: 500 }, (_, i) => ({ args: `[${i}]` })),
      { uepRuntime: { node_version: "v20", sdk_version: "0.1.0", platform: "linux", arch: "x64", hostname: "h" } },
    );
    const before = sql.statements;
    const result = await store.insertTasks(b);
    expect(sql.statements - before).toBe(1);
    expect(result).toEqual({ ok: true, inserted: b.tasks.map((t) => t.id), existing: [] });
    const tasks = await store.getTasks(b.tasks.map((t) => t.id));
    expect(tasks).toHaveLength(500);
    expect(tasks[0]).toMatchObject({
      ownerId: f.owner.id,
      endpointId: f.endpoint.id,
      uepId: b.uepId,
      functionId: f.fn.id,
      taskGroupId: b.taskGroupId,
      state: "received",
      result: null,
      error: null,
      completedAt: null,
    });
    expect(await store.taskGroupOwner(b.taskGroupId)).toBe(f.owner.id);
    expect(await store.getUep(b.uepId)).toMatchObject({
      endpointId: f.endpoint.id,
      identityId: f.owner.id,
      config: { worker_init: "true" },
      runtime: { hostname: "h" },
      lastSeen: null,
    });
  });

  it("accepts the same submit again as an idempotent retry", async () => {
    const f = await fixture();
    const b = batch(f, [{ args: "[1]" }, { args: "[2]" }]);
    await store.insertTasks(b);
    await store.markTasksWaiting([b.tasks[0].id]);
    const retry = await store.insertTasks(b);
    expect(retry).toEqual({
      ok: true,
      inserted: [],
      existing: [
        { taskId: b.tasks[0].id, state: "waiting-for-endpoint", taskGroupId: b.taskGroupId },
        { taskId: b.tasks[1].id, state: "received", taskGroupId: b.taskGroupId },
      ],
    });
    // Without a task group named by the SDK, a retry under a new group id is the same submit.
    const regrouped = await store.insertTasks({ ...b, taskGroupId: randomUUID() });
    expect(regrouped.ok).toBe(true);
    // Mixed: one known task, one new.
    const mixed = await store.insertTasks({ ...b, tasks: [b.tasks[0], batch(f, [{}]).tasks[0]] });
    expect(mixed).toMatchObject({ ok: true, existing: [{ taskId: b.tasks[0].id }] });
    if (mixed.ok) expect(mixed.inserted).toHaveLength(1);
  });

  it("stores a batch once when the same submit races itself", async () => {
    const f = await fixture();
    const b = batch(
      f,
      Array.from({ length: 50 }, () => ({})),
    );
    const other = opened.second ? new Store(await opened.second()) : store;
    const results = await Promise.all([store.insertTasks(b), other.insertTasks(b), store.insertTasks(b)]);
    for (const r of results) expect(r.ok).toBe(true);
    const inserted = results.flatMap((r) => (r.ok ? r.inserted : []));
    expect(inserted.sort()).toEqual(b.tasks.map((t) => t.id).sort());
    expect(await store.getTasks(b.tasks.map((t) => t.id))).toHaveLength(50);
  });

  it("refuses a reused task id, storing nothing of the batch", async () => {
    const f = await fixture();
    const known = batch(f, [{ args: "[1]" }]);
    await store.insertTasks(known);
    const id = known.tasks[0].id;
    const fresh = randomUUID();
    const other = await fixture();
    const cases: Array<[TaskBatch, RegExp]> = [
      [{ ...known, tasks: [{ ...known.tasks[0], argsSha256: sha("[2]") }] }, /other arguments/],
      [{ ...known, tasks: [{ ...known.tasks[0], functionId: (await fixture()).fn.id }] }, /another function/],
      [{ ...known, ownerId: other.owner.id, taskGroupId: randomUUID() }, /another identity/],
      [{ ...known, endpointId: other.endpoint.id }, /on endpoint/],
      [{ ...known, uepId: randomUUID() }, /user endpoint configuration/],
      [{ ...known, taskGroupGiven: true, taskGroupId: randomUUID() }, /in task group/],
    ];
    for (const [b, reason] of cases) {
      const result = await store.insertTasks({
        ...b,
        tasks: [{ id: fresh, functionId: f.fn.id, argsBytes: 2, argsSha256: sha("[]") }, ...b.tasks],
      });
      expect(result).toMatchObject({ ok: false, taskGroupConflict: false, conflict: { taskId: id } });
      if (!result.ok && !result.taskGroupConflict) expect(result.conflict.reason).toMatch(reason);
    }
    expect(await store.getTasks([fresh])).toEqual([]);
  });

  it("refuses another owner's task group", async () => {
    const f = await fixture();
    const b = batch(f, [{}]);
    await store.insertTasks(b);
    const g = await fixture();
    const intruder = batch(g, [{}], { taskGroupId: b.taskGroupId, taskGroupGiven: true });
    expect(await store.insertTasks(intruder)).toEqual({ ok: false, taskGroupConflict: true });
    expect(await store.getTasks([intruder.tasks[0].id])).toEqual([]);
  });

  it("moves tasks forward only: waiting, running, then a terminal result", async () => {
    const f = await fixture();
    const b = batch(f, [{}, {}, {}]);
    const [t1, t2, t3] = b.tasks.map((t) => t.id);
    await store.insertTasks(b);

    let before = sql.statements;
    await store.markTasksWaiting([t1, t2, t3]);
    expect(sql.statements - before).toBe(1);

    // The task's UEP account reports it; a running report from another endpoint is ignored.
    const uep = { sender: uepBrokerUser(b.uepId) };
    expect(await store.markTasksRunning([{ taskId: t1, endpointId: randomUUID(), ...uep }])).toEqual({
      changed: 0,
      refused: [],
    });
    expect(
      await store.markTasksRunning([
        { taskId: t1, endpointId: f.endpoint.id, ...uep },
        { taskId: t2, endpointId: f.endpoint.id, ...uep },
      ]),
    ).toEqual({ changed: 2, refused: [] });

    before = sql.statements;
    const stored = await store.storeResults([
      {
        taskId: t1,
        endpointId: f.endpoint.id,
        ...uep,
        state: "success",
        result: { strategy: "conduit.JSONData", data: "42" },
        completedAt: Date.now(),
      },
      {
        taskId: t2,
        endpointId: f.endpoint.id,
        ...uep,
        state: "failed",
        error: { code: "TASK_EXCEPTION", name: "TypeError", message: "boom" },
        completedAt: Date.now(),
      },
      { taskId: randomUUID(), endpointId: f.endpoint.id, ...uep, state: "success", completedAt: Date.now() },
      { taskId: t3, endpointId: randomUUID(), ...uep, state: "success", completedAt: Date.now() },
    ]);
    expect(sql.statements - before).toBe(1);
    const answer = {
      taskGroupId: b.taskGroupId,
      sender: uep.sender,
      refused: false,
      updated: true,
      highAssurance: false,
    };
    expect(stored.sort((a, b) => a.state.localeCompare(b.state))).toEqual([
      { ...answer, taskId: t2, state: "failed" },
      { ...answer, taskId: t1, state: "success" },
    ]);

    const [r1, r2, r3] = await Promise.all([t1, t2, t3].map((id) => store.getTask(id)));
    expect(r1).toMatchObject({ state: "success", result: { strategy: "conduit.JSONData", data: "42" }, error: null });
    expect(r1?.completedAt).toBeInstanceOf(Date);
    expect(r2).toMatchObject({ state: "failed", result: null, error: { code: "TASK_EXCEPTION", message: "boom" } });
    expect(r3?.state).toBe("waiting-for-endpoint");

    // A second result (a re-run or a redelivery) changes nothing, and running never follows a result.
    const again = await store.storeResults([
      { taskId: t1, endpointId: f.endpoint.id, ...uep, state: "failed", completedAt: Date.now() },
      { taskId: t1, endpointId: f.endpoint.id, ...uep, state: "failed", completedAt: Date.now() },
    ]);
    expect(again).toEqual([{ ...answer, taskId: t1, updated: false, state: "success" }]);
    expect((await store.markTasksRunning([{ taskId: t1, endpointId: f.endpoint.id, ...uep }])).changed).toBe(0);
    await store.markTasksWaiting([t1]);
    expect((await store.getTask(t1))?.state).toBe("success");
    expect(await store.getTask(randomUUID())).toBeUndefined();
  });

  it("stores big results (bound apart from the batch's JSON) beside small ones in one statement, byte for byte", async () => {
    const f = await fixture();
    const b = batch(f, [{}, {}, {}, {}]);
    const [t1, t2, t3, t4] = b.tasks.map((t) => t.id);
    await store.insertTasks(b);
    const uep = { sender: uepBrokerUser(b.uepId) };
    // Every byte value a StructuredData result carries, base64; JSON text with quotes, escapes and non-ASCII.
    const big = randomBytes(3 * INLINE_RESULT_MAX).toString("base64");
    const json = JSON.stringify({ s: `"quoted" \\ back\nslash é ✓ 😀 ${"y".repeat(INLINE_RESULT_MAX)}` });
    const outcome = (taskId: string, data: string, strategy = "conduit.StructuredData") => ({
      taskId,
      endpointId: f.endpoint.id,
      ...uep,
      state: "success" as const,
      result: { strategy, data },
      completedAt: Date.now(),
    });
    const before = sql.statements;
    const stored = await store.storeResults([
      outcome(t1, big),
      outcome(t2, "small"),
      outcome(t3, json, "conduit.JSONData"),
      // The same big result twice in one batch (a redelivery beside its first copy): stored once.
      outcome(t1, big),
      outcome(t4, `${big}!`),
    ]);
    expect(sql.statements - before).toBe(1);
    expect(new Set(stored.filter((s) => s.updated).map((s) => s.taskId))).toEqual(new Set([t1, t2, t3, t4]));
    const [r1, r2, r3, r4] = await Promise.all([t1, t2, t3, t4].map((id) => store.getTask(id)));
    expect(r1?.result?.data === big).toBe(true);
    expect(r2?.result).toEqual({ strategy: "conduit.StructuredData", data: "small" });
    expect(r3?.result?.data === json).toBe(true);
    expect(r3?.result?.strategy).toBe("conduit.JSONData");
    expect(r4?.result?.data === `${big}!`).toBe(true);
  });

  it("takes a report only from the task's UEP account, its endpoint's account or the shared account", async () => {
    const f = await fixture();
    const b = batch(f, [{}, {}, {}, {}]);
    const [t1, t2, t3, t4] = b.tasks.map((t) => t.id);
    await store.insertTasks(b);
    await store.markTasksWaiting([t1, t2, t3, t4]);
    const endpointId = f.endpoint.id;
    const otherUep = uepBrokerUser(randomUUID());
    const otherEndpoint = endpointBrokerUser(randomUUID());
    const result = (taskId: string, sender: string, sharedAccount?: boolean) => ({
      taskId,
      endpointId,
      sender,
      ...(sharedAccount === undefined ? {} : { sharedAccount }),
      state: "success" as const,
      result: { strategy: "conduit.JSONData", data: JSON.stringify(sender) },
      completedAt: Date.now(),
    });

    // Another UEP's account (of the same endpoint), another endpoint's, the service's unless shared: refused.
    let before = sql.statements;
    const running = await store.markTasksRunning([
      { taskId: t1, endpointId, sender: otherUep },
      { taskId: t2, endpointId, sender: otherEndpoint },
      { taskId: t3, endpointId, sender: "guest" },
    ]);
    expect(running.changed).toBe(0);
    expect(running.refused.map((r) => [r.taskId, r.sender]).sort()).toEqual(
      [
        [t1, otherUep],
        [t2, otherEndpoint],
        [t3, "guest"],
      ].sort(),
    );
    expect(sql.statements - before).toBe(1);
    before = sql.statements;
    const refused = await store.storeResults([
      result(t1, otherUep),
      result(t2, "guest"),
      // A forged copy ahead of the real result does not hide it.
      result(t3, otherUep),
      result(t3, uepBrokerUser(b.uepId)),
    ]);
    expect(sql.statements - before).toBe(1);
    expect(refused.map((r) => [r.taskId, r.sender, r.refused, r.updated]).sort()).toEqual(
      [
        [t1, otherUep, true, false],
        [t2, "guest", true, false],
        [t3, otherUep, true, false],
        [t3, uepBrokerUser(b.uepId), false, true],
      ].sort(),
    );
    expect((await store.getTask(t1))?.state).toBe("waiting-for-endpoint");
    expect((await store.getTask(t2))?.state).toBe("waiting-for-endpoint");
    expect((await store.getTask(t3))?.result?.data).toBe(JSON.stringify(uepBrokerUser(b.uepId)));

    // The endpoint's own account (an MEP failing its tasks) and the shared account may.
    const allowed = await store.storeResults([result(t1, endpointBrokerUser(endpointId)), result(t2, "guest", true)]);
    expect(allowed.map((r) => [r.taskId, r.refused, r.updated]).sort()).toEqual(
      [
        [t1, false, true],
        [t2, false, true],
      ].sort(),
    );
    expect(
      (await store.markTasksRunning([{ taskId: t4, endpointId, sender: "guest", sharedAccount: true }])).changed,
    ).toBe(1);
  });

  it("records UEP heartbeats and their errors", async () => {
    const f = await fixture();
    const b = batch(f, [{}]);
    await store.insertTasks(b);
    expect(await store.recordUepHeartbeat(f.endpoint.id, b.uepId)).toBe(true);
    expect((await store.getUep(b.uepId))?.lastSeen).toBeInstanceOf(Date);
    const error = { code: "UEP_START_FAILED", name: "Error", message: "bad template" };
    await store.recordUepHeartbeat(f.endpoint.id, b.uepId, error);
    expect((await store.getEndpoint(f.endpoint.id))?.lastError).toEqual(error);
    expect(await store.recordUepHeartbeat(f.endpoint.id, randomUUID())).toBe(false);
  });

  it("lists the ids whose broker accounts act for an identity, also as its removal saw them", async () => {
    const mine = await fixture(true);
    const other = await fixture(true);
    const onMine = batch(mine, [{}, {}]);
    // Its task on another's endpoint, and another's task on its endpoint.
    const onOthers = batch(other, [{}], { ownerId: mine.owner.id, taskGroupId: onMine.taskGroupId });
    const othersOnMine = batch(mine, [{}], { ownerId: other.owner.id });
    for (const b of [onMine, onOthers, othersOnMine]) expect((await store.insertTasks(b)).ok).toBe(true);
    const sorted = (h: { endpointIds: string[]; uepIds: string[]; taskGroupIds: string[]; tasks: number }) => ({
      tasks: h.tasks,
      endpointIds: [...h.endpointIds].sort(),
      uepIds: [...h.uepIds].sort(),
      taskGroupIds: [...h.taskGroupIds].sort(),
    });
    const expected = {
      tasks: 3,
      endpointIds: [mine.endpoint.id],
      uepIds: [onMine.uepId, onOthers.uepId, othersOnMine.uepId].sort(),
      taskGroupIds: [onMine.taskGroupId],
    };
    expect(sorted(await store.identityHoldings(mine.owner.id))).toEqual(expected);
    const refused = await store.removeIdentity(mine.owner.id, false);
    expect(refused).toMatchObject({ removed: false, endpoints: 1, tasks: 3 });
    const removal = await store.removeIdentity(mine.owner.id, true);
    expect(removal).toMatchObject({ removed: true, endpoints: 1, tasks: 3 });
    expect(sorted(removal.holdings)).toEqual(expected);
    expect(sorted(await store.identityHoldings(mine.owner.id))).toEqual({
      tasks: 0,
      endpointIds: [],
      uepIds: [],
      taskGroupIds: [],
    });
  });

  it("rolls a transaction back when it throws", async () => {
    const username = `tx-${randomUUID()}@example.org`;
    await expect(
      opened.client.transaction(async (tx) => {
        await tx.query("INSERT INTO identities (id, username) VALUES ($1::uuid, $2)", [randomUUID(), username]);
        throw new Error("abort");
      }),
    ).rejects.toThrow("abort");
    expect(await store.findIdentityByUsername(username)).toBeUndefined();
  });
});
