/**
 * What route handlers share, and the request fields the auth hook fills in.
 */
import type { FastifyInstance } from "fastify";
import type { OidcService } from "../auth/oidc.js";
import type { PolicyGate } from "../auth/policy-gate.js";
import type { BrokerAccounts } from "../broker/broker-accounts.js";
import type { ServiceBroker } from "../broker/service-broker.js";
import type { ServiceMetrics } from "../metrics.js";
import type { AuthStore } from "../store/auth-store.js";
import type { Store } from "../store/store.js";
import type { Identity } from "../store/store-types.js";
import type { TaskSubmitter } from "../tasks/task-submitter.js";

declare module "fastify" {
  interface FastifyRequest {
    /** Set by the onRequest auth hook on every route that is not public. */
    identity: Identity;
  }
  interface FastifyContextConfig {
    /** Answered without a token (/healthz, /readyz, /openapi.json). */
    public?: boolean;
  }
}

export interface ApiContext {
  store: Store;
  /** Provider models, signing keys, passwords, client identities, logins. */
  authStore: AuthStore;
  /** The OpenID provider, once the service listens (its issuer is the service's URL). */
  oidc(): OidcService | undefined;
  broker: ServiceBroker;
  submitter: TaskSubmitter;
  /** Handed to endpoints and SDKs. */
  amqpPublicUrl: string;
  /**
   * Scoped broker accounts (the default): endpoints, UEPs and task groups get
   * their own. Undefined exactly with `--shared-broker-account`.
   */
  brokerAccounts?: BrokerAccounts;
  /** Port of the management API the service uses (scoped accounts only), told to MEPs. */
  managementPort?: number;
  maxTaskBytes: number;
  version: string;
  metrics: ServiceMetrics;
  /** Endpoints' authentication policies, checked on submit, task status and result fetch. */
  policies: PolicyGate;
  /** The service's clock option (policies, one-time codes). */
  clock: () => number;
}

export type RouteRegistrar = (app: FastifyInstance, ctx: ApiContext) => void;
