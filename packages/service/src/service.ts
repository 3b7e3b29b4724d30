/**
 * Starts the whole service in this process: store (migrated), broker (topology
 * and consumers), HTTP API, admin credentials. Used by the CLI, and by tests,
 * the demo and the benchmarks in-process.
 */

import { randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import { brokerUser, ConduitError } from "@conduit/protocol";
import type { ApiContext } from "./api/api-context.js";
import { loginRoutes } from "./api/routes/login-routes.js";
import { createApp, installRoutes } from "./api/server.js";
import { Authenticator } from "./auth/authenticator.js";
import { JwtVerifier } from "./auth/jwt-verifier.js";
import { OidcService } from "./auth/oidc.js";
import { PolicyGate } from "./auth/policy-gate.js";
import { checkUsername } from "./auth/username.js";
import { BrokerAccountSweeper } from "./broker/broker-account-sweeper.js";
import { BrokerAccounts } from "./broker/broker-accounts.js";
import { HeartbeatConsumer } from "./broker/heartbeat-consumer.js";
import { ManagementApi, vhostOf } from "./broker/management-api.js";
import { ResultConsumer } from "./broker/result-consumer.js";
import { ServiceBroker } from "./broker/service-broker.js";
import { consoleRoutes } from "./console/console-routes.js";
import { SessionSealer } from "./console/console-session.js";
import { ADMIN_USERNAME, ensureAdminCredentials } from "./credentials.js";
import { lockDataDir } from "./data-dir-lock.js";
import { sharedAccountOneIdentity, sharedAccountStoreHasIdentities } from "./errors.js";
import { ServiceMetrics } from "./metrics.js";
import { compileOptions, type ServiceConfig, type ServiceOptions } from "./service-options.js";
import type { AuthStore } from "./store/auth-store.js";
import { openStores } from "./store/open-store.js";
import type { Store } from "./store/store.js";
import type { Identity, IdentityFields } from "./store/store-types.js";
import { HaFunctionRetention } from "./tasks/ha-function-retention.js";
import { TaskSubmitter } from "./tasks/task-submitter.js";
import { SERVICE_VERSION } from "./version.js";

export interface RunningService {
  /** Base URL, e.g. `http://127.0.0.1:8400` (the real port when `port: 0`). */
  url: string;
  /** A working token of the local admin identity (`admin@localhost`). */
  adminToken: string;
  /** Where credentials.json was written by this start, if it was. */
  credentialsFile: string | undefined;
  /** The frozen, validated options in force. */
  config: ServiceConfig;
  store: Store;
  /** The login side of the store: provider models, signing keys, passwords, clients, logins. */
  authStore: AuthStore;
  /** The OpenID provider (issuer: {@link url}). */
  oidc: OidcService;
  /**
   * Creates an identity (or finds the one with this `user@domain` username) and
   * a new token for it; with `sharedBrokerAccount`, for the local administrator only.
   */
  createIdentity(username: string, fields?: IdentityFields): Promise<{ identity: Identity; token: string }>;
  /**
   * Runs the retention job of High-Assurance functions now (it also runs every
   * hour): deletes those unused for longer than `haFunctionRetentionDays` on
   * the service's `clock`; resolves with their ids.
   */
  purgeIdleHaFunctions(): Promise<string[]>;
  /** Stops consuming, closes HTTP, the broker and the store; safe to call twice. */
  close(): Promise<void>;
}

/** Name of the service secret (store) the derived broker passwords are keyed with. */
const BROKER_SECRET = "broker-accounts";

/** Name of the service secret the OpenID provider's cookies are signed with. */
const COOKIE_SECRET = "oidc-cookies";

/** Name of the service secret the web console's session cookies are sealed with. */
const CONSOLE_SECRET = "console-sessions";

/** How often expired provider rows and deny-list entries are deleted. */
const SWEEP_EVERY_MS = 10 * 60_000;

/** Result batches are up to this size, so each consumer may hold this many unacked deliveries. */
const RESULT_BATCH = 500;

export async function startService(options: ServiceOptions = {}): Promise<RunningService> {
  const config = compileOptions(options);
  // Undone in reverse order on failure and on close.
  const teardown: Array<() => Promise<void>> = [];
  const undo = async () => {
    for (const step of teardown.splice(0).reverse()) await step().catch(() => undefined);
  };
  try {
    if (config.store.kind === "pglite") {
      const lock = await lockDataDir(config.store.dataDir);
      teardown.push(() => lock.release());
    }
    const app = await createApp({
      logLevel: config.logLevel,
      bodyLimit: config.maxRequestBytes,
      version: SERVICE_VERSION,
    });
    // At every start: a warning once is forgotten, and guest stays an open door to the broker.
    if (isGuestLogin(config.amqpUrl)) {
      app.log.warn(
        "The service logs in to RabbitMQ as guest/guest (--amqp-url), the broker's default administrator, whom any local user or task can log in as too; give the service an administrator of its own in --amqp-url and delete guest (rabbitmqctl delete_user guest).",
      );
    }

    // The broker first: if RabbitMQ is not there, say so before a first PGlite start spends seconds creating its files.
    const broker = await ServiceBroker.connect({
      url: config.amqpUrl,
      logger: app.log,
      prefetch: RESULT_BATCH * 2,
      // A few quick attempts: an unreachable broker at start is a setup error to report, not to wait out.
      initialMaxRetries: 3,
      resultRetentionMs: config.resultRetentionMs,
      queueType: config.amqpQueueType,
      taskBatch: config.taskBatch,
    });
    teardown.push(() => broker.close());
    // Scoped accounts or none: a service that cannot make them refuses to start rather than hand out its own.
    if (config.amqpManagementUrl) await new ManagementApi(config.amqpManagementUrl).check(vhostOf(config.amqpUrl));
    const { store, authStore } = await openStores(config.store, config.clock);
    teardown.push(() => store.close());
    if (config.sharedBrokerAccount) {
      const others = (await store.listIdentities()).filter((i) => i.username !== ADMIN_USERNAME);
      if (others.length > 0) throw sharedAccountStoreHasIdentities(others.map((i) => i.username));
    }
    // HTTP closes before the store and the broker, so in-flight submits finish.
    teardown.push(() => app.close());

    let brokerAccounts: BrokerAccounts | undefined;
    let sweeper: BrokerAccountSweeper | undefined;
    if (config.amqpManagementUrl) {
      // One secret for every replica, made by the first start: UEP and task group passwords derive from it.
      const secret = await store.serviceSecret(BROKER_SECRET, () => randomBytes(32).toString("base64url"));
      brokerAccounts = new BrokerAccounts(config.amqpManagementUrl, config.amqpPublicUrl, secret);
      sweeper = new BrokerAccountSweeper(brokerAccounts, store, app.log, {
        resultRetentionMs: config.resultRetentionMs,
      });
    }
    // Without scoped accounts, endpoints and UEPs publish as the service's user or the public URL's.
    const sharedAccounts = brokerAccounts
      ? undefined
      : new Set([brokerUser(config.amqpUrl), brokerUser(config.amqpPublicUrl)]);
    const metrics = new ServiceMetrics({
      store,
      management: config.amqpManagementUrl ? new ManagementApi(config.amqpManagementUrl) : undefined,
      vhost: vhostOf(config.amqpUrl),
    });
    await broker.addConsumer(
      new ResultConsumer(store, broker, app.log, { maxBatch: RESULT_BATCH, sharedAccounts, metrics }),
    );
    await broker.addConsumer(new HeartbeatConsumer(store, app.log, sweeper, sharedAccounts));
    // Stop consuming before anything else closes: a half-handled result stays unacked and comes back.
    teardown.push(() => broker.stopConsumers());
    if (sweeper) {
      sweeper.start();
      teardown.push(() => sweeper.stop());
    }
    const submitter = new TaskSubmitter(store, broker, {
      maxTaskBytes: config.maxTaskBytes,
      amqpPublicUrl: config.amqpPublicUrl,
      brokerAccounts,
      metrics,
      clock: config.clock,
      haFunctionRetentionMs: config.haFunctionRetentionMs,
      log: (line) => app.log.warn(line),
    });
    const retention = new HaFunctionRetention(store, submitter, app.log, {
      retentionMs: config.haFunctionRetentionMs,
      clock: config.clock,
    });
    retention.start();
    teardown.push(() => retention.stop());
    let oidc: OidcService | undefined;
    const ctx: ApiContext = {
      store,
      authStore,
      oidc: () => oidc,
      broker,
      submitter,
      amqpPublicUrl: config.amqpPublicUrl,
      brokerAccounts,
      managementPort: brokerAccounts?.managementPort,
      maxTaskBytes: config.maxTaskBytes,
      version: SERVICE_VERSION,
      metrics,
      policies: new PolicyGate(store, authStore, config.clock),
      clock: config.clock,
    };
    const authenticator = new Authenticator(store, (err) =>
      app.log.warn({ err }, "Could not record a token's last use."),
    );
    installRoutes(app, ctx, authenticator);
    loginRoutes(app, { store, authStore, oidc: () => oidc, clock: config.clock });
    const consoleSecret = await store.serviceSecret(CONSOLE_SECRET, () => randomBytes(32).toString("base64url"));
    // Secure cookies when the service is reached over https (a browser drops them on plain http).
    const sealer = new SessionSealer(consoleSecret, config.publicUrl?.startsWith("https:") ?? false);
    await app.register(async (scope) => consoleRoutes(scope, { store, authenticator, sealer, oidc: () => oidc }));

    try {
      await app.listen({ host: config.host, port: config.port });
    } catch (err) {
      throw new ConduitError(
        "LISTEN_FAILED",
        `Cannot listen on ${config.host}:${config.port} (${(err as Error).message}); stop what uses that port or pass another --port.`,
        { cause: err },
      );
    }
    const url = serviceUrl(config.host, app.server.address());
    // The issuer is the URL the service is reached at: --public-url, else the listen address (known now).
    oidc = await OidcService.start({
      issuer: config.publicUrl ?? url,
      authStore,
      store,
      cookieKey: await store.serviceSecret(COOKIE_SECRET, () => randomBytes(32).toString("base64url")),
      logger: app.log,
    });
    authenticator.useJwt(new JwtVerifier(oidc, store, authStore));
    const sweep = setInterval(() => {
      authStore.sweepExpired().catch((err: unknown) => app.log.warn({ err }, "Could not delete expired logins."));
    }, SWEEP_EVERY_MS);
    sweep.unref();
    teardown.push(async () => clearInterval(sweep));
    const admin = await ensureAdminCredentials(store, url, config.writeCredentials);

    let closing: Promise<void> | undefined;
    return {
      url,
      adminToken: admin.token,
      credentialsFile: admin.written,
      config,
      store,
      authStore,
      oidc,
      async createIdentity(username, fields) {
        if (config.sharedBrokerAccount && username !== ADMIN_USERNAME) throw sharedAccountOneIdentity();
        const identity = await store.createIdentity(checkUsername(username), fields);
        return { identity, token: await store.createToken(identity.id) };
      },
      purgeIdleHaFunctions: () => retention.runOnce(),
      close() {
        closing ??= undo();
        return closing;
      },
    };
  } catch (err) {
    await undo();
    throw err;
  }
}

/** Whether `amqpUrl` logs in as RabbitMQ's default account (amqplib uses guest/guest when the URL names none). */
function isGuestLogin(amqpUrl: string): boolean {
  const u = new URL(amqpUrl);
  return (
    (decodeURIComponent(u.username) || "guest") === "guest" && (decodeURIComponent(u.password) || "guest") === "guest"
  );
}

/** The URL clients use: a wildcard listen address is reached through loopback. */
function serviceUrl(host: string, address: AddressInfo | string | null): string {
  const port = typeof address === "object" && address ? address.port : 0;
  let h = host;
  if (h === "0.0.0.0" || h === "") h = "127.0.0.1";
  else if (h === "::") h = "::1";
  return `http://${h.includes(":") ? `[${h}]` : h}:${port}`;
}
