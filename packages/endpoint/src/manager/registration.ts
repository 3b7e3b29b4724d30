/**
 * Registration with the web service (`POST /v1/endpoints`): the MEP's first
 * act at `start`. It sends the id kept in `endpoint.json` (none the first
 * time), so an endpoint keeps its id across restarts, and gets back the
 * broker URL it consumes its command queue on.
 */
import { hostname, userInfo } from "node:os";
import {
  API_PREFIX,
  ConduitApiError,
  ConduitError,
  type Credential,
  type RegisterEndpointRequest,
  type RegisterEndpointResponse,
  requestWithCredential,
} from "@conduit/protocol";

export interface RegistrationOptions {
  serviceUrl: string;
  /** Whose endpoint this is: renewed once if the service answers 401. */
  credential: Credential;
  name: string;
  /** The id from `endpoint.json`; undefined at the first start. */
  endpointId: string | undefined;
  displayName: string | null;
  allowedFunctions: string[] | null;
  /** Raw `config.yaml`, for the service's records. */
  configText: string;
  /** `amqp_port` from config.yaml: replaces the port of the broker URL the service returns. */
  amqpPort: number | null;
  /** Multi-user: the service lets any identity submit, and the MEP maps each to a local account. */
  multiUser: boolean;
  /** config.yaml's `authentication_policy`, `subscription_id`, `contact_email`, `high_assurance`. */
  assurance: EndpointAssurance;
}

/** What the service needs to judge submitters and to hold an endpoint to High-Assurance rules. */
export interface EndpointAssurance {
  authenticationPolicy: string | null;
  subscriptionId: string | null;
  contactEmail: string | null;
  /** Fixed at the first registration: the service refuses a later change. */
  highAssurance: boolean;
}

export interface Registration {
  endpointId: string;
  /** Broker URL with credentials, `amqp_port` applied. */
  amqpUrl: string;
  /** The RabbitMQ user the service publishes as: commands (and, for the UEPs, tasks) come only from it. */
  serviceUser: string;
  /** Port of the broker's management API, as the service reaches it (unknown with a shared broker account). */
  managementPort: number | undefined;
}

const REGISTER_TIMEOUT_MS = 30_000;

export async function registerEndpoint(options: RegistrationOptions): Promise<Registration> {
  const url = `${options.serviceUrl}${API_PREFIX}/endpoints`;
  const body: RegisterEndpointRequest = {
    name: options.name,
    display_name: options.displayName,
    multi_user: options.multiUser,
    allowed_functions: options.allowedFunctions,
    authentication_policy: options.assurance.authenticationPolicy,
    subscription_id: options.assurance.subscriptionId,
    contact_email: options.assurance.contactEmail,
    high_assurance: options.assurance.highAssurance,
    metadata: {
      hostname: hostname(),
      node_version: process.version,
      local_user: localUser(),
      pid: process.pid,
      config: options.configText,
    },
  };
  if (options.endpointId) body.endpoint_id = options.endpointId;

  let reply: RegisterEndpointResponse | undefined;
  try {
    reply = await requestWithCredential<RegisterEndpointResponse>(options.credential, {
      method: "POST",
      url,
      body,
      signal: AbortSignal.timeout(REGISTER_TIMEOUT_MS),
      urlSetting: "CONDUIT_SERVICE_URL",
      unreachable: (err) => serviceUnreachable(options.serviceUrl, err),
    });
  } catch (err) {
    if (!(err instanceof ConduitApiError)) throw err;
    throw new ConduitError(
      err.statusCode === 401 ? "UNAUTHORIZED" : "REGISTRATION_FAILED",
      `The Conduit service at ${options.serviceUrl} refused to register endpoint ${options.name} (HTTP ${err.statusCode}): ${err.message}`,
      { cause: err },
    );
  }
  if (typeof reply?.endpoint_id !== "string" || typeof reply.amqp?.url !== "string") {
    throw badReply(options.serviceUrl, "lacks endpoint_id or amqp.url");
  }
  if (typeof reply.amqp.serviceUser !== "string" || reply.amqp.serviceUser === "") {
    throw badReply(options.serviceUrl, "lacks amqp.serviceUser (the broker user the service publishes as)");
  }
  if (options.endpointId && reply.endpoint_id !== options.endpointId) {
    throw new ConduitError(
      "ENDPOINT_ID_MISMATCH",
      `The Conduit service registered this endpoint as ${reply.endpoint_id}, not as ${options.endpointId} (kept in endpoint.json); delete endpoint.json to accept the new id, or point CONDUIT_SERVICE_URL at the service that knows the old one.`,
    );
  }
  return {
    endpointId: reply.endpoint_id,
    amqpUrl: withPort(reply.amqp.url, options.amqpPort),
    serviceUser: reply.amqp.serviceUser,
    managementPort: Number.isInteger(reply.amqp.managementPort) ? reply.amqp.managementPort : undefined,
  };
}

/** The sentence for a service that did not answer at all. */
export function serviceUnreachable(serviceUrl: string, err: unknown): ConduitError {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const why = cause?.code ?? cause?.message ?? (err as Error).message;
  return new ConduitError(
    "SERVICE_UNREACHABLE",
    `Cannot reach the Conduit service at ${serviceUrl} (${why}); start it with \`npx conduit-service start\`, or point CONDUIT_SERVICE_URL at a running service.`,
    { cause: err },
  );
}

function badReply(serviceUrl: string, what: string): ConduitError {
  return new ConduitError(
    "REGISTRATION_FAILED",
    `The registration reply of the Conduit service at ${serviceUrl} ${what}; check that CONDUIT_SERVICE_URL points at a Conduit service of the same version.`,
  );
}

/** The broker URL with `amqp_port` applied (null keeps the service's port). */
export function withPort(amqpUrl: string, port: number | null): string {
  if (port === null) return amqpUrl;
  const u = new URL(amqpUrl);
  u.port = String(port);
  return u.toString();
}

/** The local account this process runs as. */
export function localUser(): string {
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid?.() ?? "unknown");
  }
}
