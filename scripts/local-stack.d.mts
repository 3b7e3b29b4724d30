import type { ChildProcess } from "node:child_process";

export const SERVICE_BIN: string;
export const ENDPOINT_BIN: string;
export interface Output {
  stdout: string;
  stderr: string;
}
export interface Running {
  child: ChildProcess;
  output: Output;
  stop(): Promise<void>;
}
export function portOpen(port: number, host?: string): Promise<boolean>;
export function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void>;
export function freePort(): Promise<number>;
export function createVhost(): Promise<{ url: string; dispose(): Promise<void> }>;
/** A throwaway RabbitMQ user with full rights on the vhost of `vhostUrl`. */
export function createBrokerUser(vhostUrl: string): Promise<{ name: string; url: string; dispose(): Promise<void> }>;
export function ensureRabbitMQ(log?: (line: string) => void): Promise<void>;
export function ensureManagementApi(log?: (line: string) => void): Promise<void>;
export function stopProcess(child: ChildProcess, graceMs?: number): Promise<void>;
export function runEndpointCli(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; stdout: string; stderr: string }>;
export function startService(options: {
  env: NodeJS.ProcessEnv;
  port: number;
  args?: string[];
}): Promise<Running & { url: string }>;
export function startEndpoint(options: {
  env: NodeJS.ProcessEnv;
  name: string;
  args?: string[];
}): Promise<Running & { endpointId: string }>;
export interface LocalStack {
  env: NodeJS.ProcessEnv;
  serviceUrl: string;
  endpointId: string;
  service: Running & { url: string };
  endpoint: Running & { endpointId: string };
  stop(): Promise<void>;
}
export function startLocalStack(options: {
  userDir: string;
  endpointName?: string;
  serviceArgs?: string[];
  isolated?: boolean;
  log?: (line: string) => void;
}): Promise<LocalStack>;

export interface HighAssuranceKeys {
  high_assurance: true;
  authentication_policy: string;
  subscription_id: string;
}
export function createHighAssuranceKeys(serviceUrl: string, adminToken: string): Promise<HighAssuranceKeys>;
