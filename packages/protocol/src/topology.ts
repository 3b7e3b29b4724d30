/**
 * AMQP 0-9-1 topology. Every name used on the broker is built here, so the
 * service, the endpoint and the SDK can never disagree about one.
 *
 * ```
 * SDK --REST--> service --(conduit.tasks, key <uep>.tasks)--> queue <uep>.tasks --> UEP
 * service --(conduit.tasks, key ep.<id>.commands)--> queue ep.<id>.commands --> MEP
 * UEP --(conduit.results, key <endpoint id>.results)--> queue conduit.results --> service  (results and task_status)
 * service --(conduit.tasks, key tg.<group>.results)--> queue tg.<group>.results --> SDK
 * MEP/UEP --(conduit.heartbeats, key <endpoint id>.heartbeats)--> queue conduit.heartbeats --> service
 * ```
 * All exchanges and queues are durable and all messages persistent.
 */

/** Direct exchange: routing key = destination queue name (tasks, commands, SDK results). */
export const TASKS_EXCHANGE = "conduit.tasks";
/** Topic exchange the UEPs publish results to. */
export const RESULTS_EXCHANGE = "conduit.results";
/** Topic exchange the MEPs and UEPs publish heartbeats and start failures to. */
export const HEARTBEATS_EXCHANGE = "conduit.heartbeats";
/** Queue the service consumes results from (bound to {@link RESULTS_EXCHANGE} with `#`). */
export const RESULTS_QUEUE = "conduit.results";
/** Queue the service consumes heartbeats from (bound to {@link HEARTBEATS_EXCHANGE} with `#`). */
export const HEARTBEATS_QUEUE = "conduit.heartbeats";

/** The MEP's command queue. */
export function commandQueue(endpointId: string): string {
  return `ep.${endpointId}.commands`;
}

/** A UEP's name, as in the seed's logs: `uep.<endpoint id>.<uep uuid>`. */
export function uepName(endpointId: string, uepId: string): string {
  return `uep.${endpointId}.${uepId}`;
}

/** A UEP's task queue. */
export function uepTaskQueue(endpointId: string, uepId: string): string {
  return `${uepName(endpointId, uepId)}.tasks`;
}

/** The queue an Executor reads its task group's results from. */
export function taskGroupResultQueue(taskGroupId: string): string {
  return `tg.${taskGroupId}.results`;
}

export function resultsRoutingKey(endpointId: string): string {
  return `${endpointId}.results`;
}

export function heartbeatsRoutingKey(endpointId: string): string {
  return `${endpointId}.heartbeats`;
}

/**
 * RabbitMQ user of an endpoint (its MEP) when the service scopes broker
 * accounts (`--amqp-management-url`); it reaches only that endpoint's queues.
 */
export function endpointBrokerUser(endpointId: string): string {
  return `conduit-ep-${endpointId}`;
}

/** RabbitMQ user of one UEP when the service scopes broker accounts; it reaches only the UEP's task queue. */
export function uepBrokerUser(uepId: string): string {
  return `conduit-uep-${uepId}`;
}

/**
 * RabbitMQ user of one task group when the service scopes broker accounts; it
 * may only read (consume, passively check) the group's result queue.
 */
export function taskGroupBrokerUser(taskGroupId: string): string {
  return `conduit-tg-${taskGroupId}`;
}

/** Arguments every Conduit queue is declared with (all sides must agree). */
export const QUEUE_OPTIONS = { durable: true } as const;

/**
 * Arguments of a task group's result queue ({@link taskGroupResultQueue}):
 * RabbitMQ deletes it, results and all, once nobody consumed, checked or
 * declared it for `retentionMs`. Only the service declares it (redeclaring
 * with other arguments fails); SDKs check it passively.
 */
export function taskGroupQueueOptions(retentionMs: number) {
  return { durable: true, arguments: { "x-expires": retentionMs } } as const;
}
