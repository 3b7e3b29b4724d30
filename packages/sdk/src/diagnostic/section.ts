/**
 * A section of the diagnostic report: a name (its `== Diagnostic: <name> ==`
 * header), a time budget, and a function resolving its text.
 */
import type { Client } from "../index.js";
import type { DiagnosticOptions } from "./diagnostic-options.js";

/** What every section may use; resolved once before the first runs. */
export interface DiagnosticContext {
  options: Readonly<DiagnosticOptions>;
  serviceUrl: string;
  /** Where the service URL came from, for the report. */
  serviceUrlSource: string;
  /** A client with a token, or why there is none. */
  client: Client | string;
}

export interface Section {
  name: string;
  /** The section's own time budget. @default SECTION_TIMEOUT_MS */
  timeoutMs?: number;
  run(context: DiagnosticContext, signal: AbortSignal): Promise<string>;
}

/** How long one section, or one command in it, may take (upstream's 15 s). */
export const SECTION_TIMEOUT_MS = 15_000;
