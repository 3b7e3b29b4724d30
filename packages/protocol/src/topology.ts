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
 * All exchanges and queues are durable and all messages persistent. The
 * exchanges, queues, bindings and their arguments are one table here
 * ({@link TOPOLOGY} and the per-id queue specs): the service declares from it
 * ({@link declareTopology}); an endpoint with a scoped account checks from it
 * ({@link checkExchanges}), and only one on the shared broker account
 * (`--shared-broker-account`) declares.
 */
import type { Options } from "amqplib";
import { ConduitError } from "./errors.js";

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

/**
 * The type of every Conduit queue, as the service's `--amqp-queue-type` says:
 * `classic` (the default; declared without `x-queue-type`, as before the
 * option existed) or `quorum` (replicated over a RabbitMQ cluster; durable,
 * never exclusive or auto-delete, no priorities: Conduit uses none of those).
 */
export type QueueType = "classic" | "quorum";

export const QUEUE_TYPES: readonly QueueType[] = ["classic", "quorum"];

/** Arguments every Conduit queue is declared with (all sides must agree): classic ones. */
export const QUEUE_OPTIONS = { durable: true } as const;

/** Arguments of a Conduit queue of this type. */
export function queueOptions(type: QueueType = "classic"): Options.AssertQueue {
  return type === "quorum" ? { durable: true, arguments: { "x-queue-type": "quorum" } } : QUEUE_OPTIONS;
}

/**
 * Arguments of a task group's result queue ({@link taskGroupResultQueue}):
 * RabbitMQ deletes it, results and all, once nobody consumed, checked or
 * declared it for `retentionMs`. Only the service declares it (redeclaring
 * with other arguments fails); SDKs check it passively.
 */
export function taskGroupQueueOptions(retentionMs: number, type: QueueType = "classic"): Options.AssertQueue {
  const { arguments: typeArguments } = queueOptions(type);
  return { durable: true, arguments: { ...typeArguments, "x-expires": retentionMs } };
}

export interface ExchangeSpec {
  readonly name: string;
  readonly type: "direct" | "topic";
  readonly options: Options.AssertExchange;
}

/** A queue, its declaration arguments, and what it is bound to (exchange and routing key pattern). */
export interface QueueSpec {
  readonly name: string;
  readonly options: Options.AssertQueue;
  readonly bindings: ReadonlyArray<{ readonly exchange: string; readonly pattern: string }>;
}

/** The exchanges and the service's own queues: declared by the service at every (re)connection. */
export const TOPOLOGY: { readonly exchanges: readonly ExchangeSpec[]; readonly queues: readonly QueueSpec[] } = {
  exchanges: [
    { name: TASKS_EXCHANGE, type: "direct", options: { durable: true } },
    { name: RESULTS_EXCHANGE, type: "topic", options: { durable: true } },
    { name: HEARTBEATS_EXCHANGE, type: "topic", options: { durable: true } },
  ],
  queues: [
    { name: RESULTS_QUEUE, options: QUEUE_OPTIONS, bindings: [{ exchange: RESULTS_EXCHANGE, pattern: "#" }] },
    { name: HEARTBEATS_QUEUE, options: QUEUE_OPTIONS, bindings: [{ exchange: HEARTBEATS_EXCHANGE, pattern: "#" }] },
  ],
};

/**
 * A queue of {@link TASKS_EXCHANGE}, which routes by queue name: a MEP's
 * command queue, a UEP's task queue, a task group's result queue. The service
 * declares and binds these on demand.
 */
export function directQueueSpec(name: string, options: Options.AssertQueue = QUEUE_OPTIONS): QueueSpec {
  return { name, options, bindings: [{ exchange: TASKS_EXCHANGE, pattern: name }] };
}

export function commandQueueSpec(endpointId: string): QueueSpec {
  return directQueueSpec(commandQueue(endpointId));
}

export function uepTaskQueueSpec(endpointId: string, uepId: string): QueueSpec {
  return directQueueSpec(uepTaskQueue(endpointId, uepId));
}

export function taskGroupQueueSpec(taskGroupId: string, retentionMs: number): QueueSpec {
  return directQueueSpec(taskGroupResultQueue(taskGroupId), taskGroupQueueOptions(retentionMs));
}

/** What the topology functions need of an amqplib channel (a confirm channel or a plain one). */
export interface TopologyChannel {
  assertExchange(exchange: string, type: string, options?: Options.AssertExchange): Promise<unknown>;
  checkExchange(exchange: string): Promise<unknown>;
  assertQueue(queue: string, options?: Options.AssertQueue): Promise<unknown>;
  bindQueue(queue: string, source: string, pattern: string): Promise<unknown>;
}

/** Declares every exchange and shared queue of {@link TOPOLOGY}, with its bindings (the service's job). */
export async function declareTopology(channel: TopologyChannel, type: QueueType = "classic"): Promise<void> {
  await declareExchanges(channel);
  for (const queue of TOPOLOGY.queues) await declareQueue(channel, { ...queue, options: queueOptions(type) });
}

/** Declares every exchange of {@link TOPOLOGY}: for an endpoint only on the shared broker account. */
export async function declareExchanges(channel: TopologyChannel): Promise<void> {
  for (const { name, type, options } of TOPOLOGY.exchanges) await channel.assertExchange(name, type, options);
}

/**
 * Checks passively that these exchanges of {@link TOPOLOGY} exist (all by
 * default): a passive declare needs no permission, so a scoped account can
 * make sure of them without being able to create or change them.
 */
export async function checkExchanges(
  channel: TopologyChannel,
  names: readonly string[] = TOPOLOGY.exchanges.map((e) => e.name),
): Promise<void> {
  for (const name of names) {
    if (!TOPOLOGY.exchanges.some((e) => e.name === name)) throw new Error(`${name} is not a Conduit exchange`);
    await channel.checkExchange(name);
  }
}

/**
 * Declares a queue with its arguments and binds it as its spec says. A queue
 * that exists with other arguments (another queue type) fails with
 * QUEUE_ARGUMENTS_DIFFER, in one sentence naming `--amqp-queue-type`.
 */
export async function declareQueue(channel: TopologyChannel, queue: QueueSpec): Promise<void> {
  try {
    await channel.assertQueue(queue.name, queue.options);
  } catch (err) {
    throw queueMismatchError(err, queue) ?? err;
  }
  for (const { exchange, pattern } of queue.bindings) await channel.bindQueue(queue.name, exchange, pattern);
}

/** What {@link ensureQueue} needs to check a queue passively without risking a channel (a BrokerLink). */
export interface QueueChecker {
  /** Undefined when the queue does not exist. */
  checkQueue(queue: string): Promise<{ messageCount: number; consumerCount: number } | undefined>;
}

/**
 * An endpoint's side of a queue the service declares: when it exists it is
 * only checked (passively, on a throwaway channel), so the service's arguments
 * stand whatever its `--amqp-queue-type`; only a missing one is declared, with
 * `queue`'s arguments, and bound when `bind` (the shared broker account may).
 * Returns the queue's ready messages.
 */
export async function ensureQueue(
  channel: TopologyChannel,
  checker: QueueChecker,
  queue: QueueSpec,
  bind = false,
): Promise<number> {
  const found = await checker.checkQueue(queue.name);
  let messages = found?.messageCount ?? 0;
  if (!found) {
    const declared = (await channel.assertQueue(queue.name, queue.options)) as { messageCount?: number } | undefined;
    messages = declared?.messageCount ?? 0;
  }
  if (bind) for (const { exchange, pattern } of queue.bindings) await channel.bindQueue(queue.name, exchange, pattern);
  return messages;
}

/**
 * The sentence for a declaration the broker refused because the queue exists
 * with other arguments (406 PRECONDITION_FAILED, "inequivalent arg"), else undefined.
 */
export function queueMismatchError(err: unknown, queue: Pick<QueueSpec, "name" | "options">): ConduitError | undefined {
  const message = err instanceof Error ? err.message : "";
  const inequivalent = /inequivalent arg '([^']+)'[^:]*: received (.*?) but current is (.*?)"?$/.exec(message);
  if ((err as { code?: number } | null)?.code !== 406 || !inequivalent) return undefined;
  const type = (queue.options.arguments?.["x-queue-type"] as QueueType | undefined) ?? "classic";
  const [, arg, received, current] = inequivalent;
  const what =
    arg === "x-queue-type"
      ? `is a ${/quorum/.test(current) ? "quorum" : /classic|none/.test(current) ? "classic" : current} queue`
      : `has ${arg} ${current.replace(/^the value /, "")} (this service asks for ${received.replace(/^the value /, "")})`;
  return new ConduitError(
    "QUEUE_ARGUMENTS_DIFFER",
    `The broker's queue ${queue.name} ${what}, but this service declares ${type} queues (--amqp-queue-type ${type}); start the service with the --amqp-queue-type the queues were made with, or delete them (they hold undelivered messages) to make them anew.`,
  );
}
