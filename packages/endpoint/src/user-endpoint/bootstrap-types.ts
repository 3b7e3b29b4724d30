/**
 * What the MEP hands a UEP on stdin: one line of JSON, after which stdin stays
 * open. The MEP reads the template's files (as root, in multi-user mode); the UEP, already
 * unprivileged, validates and renders them. When stdin closes, the MEP is gone
 * and the UEP shuts down (it dies with its parent however the MEP died).
 */
import type { IdentityInfo, UserRuntime } from "@conduit/protocol/wire";
import type { MappedIdentity } from "../config/render.js";
import type { TemplateFiles } from "../config/template-files.js";

export interface UepBootstrap {
  v: 1;
  endpointId: string;
  uepId: string;
  /** `uep.<endpoint id>.<uep id>`. */
  uepName: string;
  mepPid: number;
  /** Broker URL (with credentials) the UEP consumes its task queue on. */
  amqpUrl: string;
  /** The RabbitMQ user the service publishes as: tasks and cancels with another `user-id` are dropped. */
  serviceUser: string;
  /** The template and its siblings, or why the MEP could not read them. */
  template: TemplateFiles | { error: string };
  /** Raw text of user_config_schema.json, or null when there is none. */
  schema: string | null;
  /** user_environment.yaml, already applied to the UEP's environment by the MEP. */
  userEnvironment: Record<string, string>;
  /** The submitter's userEndpointConfig, as sent. */
  userConfig: Record<string, unknown>;
  userRuntime: UserRuntime | null;
  /** The MEP's config.yaml, parsed. */
  parentConfig: Record<string, unknown>;
  mappedIdentity: MappedIdentity | null;
  identity: IdentityInfo;
  /** From the MEP's config.yaml; overrides the template's list when set. */
  allowedFunctions: string[] | null;
  /**
   * High-Assurance with an audit log: the descriptor on which the UEP writes
   * its task records, one JSON string a line, for the MEP to file. Absent
   * (or null) without an audit log.
   */
  auditFd?: number | null;
}

/** UEP exit codes the MEP acts on. */
export const UEP_EXIT = {
  /** Stopped normally (idle, signal, parent gone). */
  ok: 0,
  /** Could not start (template, schema, config, engine, endpoint_setup); its queued tasks were failed with the reason. */
  startFailed: 3,
  /** The broker refused its account at a reconnect (deleted with its identity): not restarted. */
  accountRefused: 4,
  /** Stopped at idle_heartbeats_hard with tasks unfinished (without any, it exits 0): not restarted; its reason file says why, and the MEP fails what is left. */
  idleHardLimit: 5,
} as const;
