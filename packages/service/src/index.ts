/**
 * @conduit/service: the Conduit web service — REST API (Fastify, OpenAPI at
 * /openapi.json), store (PGlite embedded by default, Postgres with
 * `databaseUrl`), and the RabbitMQ side (tasks out, results and heartbeats in).
 *
 * ```ts
 * import { startService } from "@conduit/service";
 *
 * const service = await startService({ port: 0, dataDir: "/tmp/conduit-data", writeCredentials: false });
 * const { token } = await service.createIdentity("alice@example.org");
 * const me = await fetch(`${service.url}/v1/whoami`, { headers: { authorization: `Bearer ${token}` } });
 * console.log(await me.json()); // { id: "…", username: "alice@example.org" }
 * await service.close();
 * ```
 */

export { ADMIN_USERNAME } from "./credentials.js";
export { ServiceError } from "./errors.js";
export type { RunningService } from "./service.js";
export { startService } from "./service.js";
export type { LogLevel, ServiceConfig, ServiceOptions } from "./service-options.js";
export type { StoreLocation } from "./store/open-store.js";
export { Store } from "./store/store.js";
export type {
  EndpointRecord,
  FunctionRecord,
  Identity,
  IdentityFields,
  StoredResult,
  TaskRecord,
  TaskResultInput,
  UepRecord,
} from "./store/store-types.js";
