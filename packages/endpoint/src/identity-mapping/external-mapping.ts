/**
 * `external_identity_mapping#1.0.0`: the admin's program decides. It runs as
 * `command + ["-c", <connector>, "-s", <endpoint id>, "-a"]`, reads
 * `{"DATA_TYPE": "identity_mapping_input#1.0.0", "identities": [...]}` on
 * stdin and writes `{"DATA_TYPE": "identity_mapping_output#1.0.0", "result":
 * [{"id", "output"}]}` on stdout; it must exit 0 within the timeout. Empty
 * stdout means "no mapping". Messages are Globus's.
 */
import { spawn } from "node:child_process";
import { shellJoin } from "../shell-quote.js";
import {
  type IdentityMapping,
  IdentityMappingError,
  type IdentityRecord,
  InvalidMappingError,
  type MapperResult,
} from "./mapping-types.js";

export const EXTERNAL_MAPPING_NAME = "external_identity_mapping";
const INPUT_DATA_TYPE = "identity_mapping_input#1.0.0";
const OUTPUT_DATA_TYPE = "identity_mapping_output#1.0.0";
const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

export interface ExternalMappingOptions {
  /** Passed after `-c`: Globus Connect Server's POSIX connector id, as Globus Compute passes it. */
  connector: string;
  /** Passed after `-s`: the manager endpoint's id. */
  storageGateway: string;
  /** Kill the program and fail the mapping after this long. @default 5000 (Globus's `mapping_timeout_s`) */
  timeoutMs?: number;
}

export class ExternalIdentityMapping implements IdentityMapping {
  readonly className = "ExternalIdentityMapping";
  /** The full argv, `-c`/`-s`/`-a` included. */
  readonly argv: readonly string[];
  readonly #timeoutMs: number;

  constructor(
    readonly dataType: string,
    command: readonly string[],
    options: ExternalMappingOptions,
  ) {
    this.argv = [...command, "-c", options.connector, "-s", options.storageGateway, "-a"];
    this.#timeoutMs = options.timeoutMs ?? 5000;
  }

  /** Checks a configuration item (its `command`); `index` names the item in errors. */
  static fromDocument(
    document: Record<string, unknown>,
    index: number,
    options: ExternalMappingOptions,
  ): ExternalIdentityMapping {
    const { command } = document;
    const valid =
      Array.isArray(command) &&
      command.length > 0 &&
      command.every((part) => typeof part === "string" || typeof part === "number");
    if (!valid) {
      throw new InvalidMappingError(
        `Invalid map config (index: ${index}): "command" must be a non-empty list such as ["/path/to/program", "arg"].`,
      );
    }
    return new ExternalIdentityMapping(String(document.DATA_TYPE), command.map(String), options);
  }

  async mapIdentities(identities: readonly IdentityRecord[]): Promise<MapperResult> {
    const stdin = JSON.stringify({ DATA_TYPE: INPUT_DATA_TYPE, identities });
    const commandText = shellJoin(this.argv);
    const { code, signal, stdout, stderr } = await this.#run(stdin, commandText);
    const details = `    command: ${commandText}\n      stdin: ${stdin}\n     stdout: ${stdout}\n     stderr: ${stderr}`;
    if (code !== 0) {
      const exit = code ?? (signal ? `signal ${signal}` : "unknown");
      const [head, ...rest] = details.split("\n");
      throw new IdentityMappingError(`Error mapping identities\n${head}\n  exit code: ${exit}\n${rest.join("\n")}`);
    }
    if (stdout === "") return [];
    let result: Array<{ id: string; output: string }>;
    try {
      result = parseOutput(stdout);
    } catch (err) {
      const e = err as Error;
      throw new IdentityMappingError(
        `The mapping application yielded an invalid result:\n  exception: (${e.name}) ${e.message}\n${details}`,
        { cause: err },
      );
    }
    // Compared as UUIDs (Globus parses both), keyed by the id as the input spelled it.
    const inputIds = new Map(identities.map((identity) => [uuidKey(identity.id), identity.id]));
    const outputs: Record<string, string[]> = {};
    for (const { id, output } of result) {
      const key = inputIds.get(uuidKey(id));
      if (key === undefined) throw new InvalidMappingError("Invalid ID in result");
      outputs[key] ??= [];
      outputs[key]?.push(output);
    }
    return [outputs];
  }

  #run(
    stdin: string,
    commandText: string,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const [exe = "", ...args] = this.argv;
      const child = spawn(exe, args, { stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.setEncoding("utf8").on("data", (d: string) => {
        stdout += d;
      });
      child.stderr.setEncoding("utf8").on("data", (d: string) => {
        stderr += d;
      });
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        const seconds = this.#timeoutMs / 1000;
        reject(new IdentityMappingError(`Command '${commandText}' timed out after ${seconds} seconds`));
      }, this.#timeoutMs);
      child.on("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.on("close", (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout, stderr });
      });
      // A program that exits without reading stdin must not crash the manager with EPIPE.
      child.stdin.on("error", () => {});
      child.stdin.end(stdin);
    });
  }
}

class ValidationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ValidationError";
  }
}

/** Checks the program's stdout as Globus's output schema does. */
function parseOutput(stdout: string): Array<{ id: string; output: string }> {
  const doc = JSON.parse(stdout) as unknown;
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw new ValidationError("the output must be a JSON object");
  }
  const { DATA_TYPE: dataType, result, ...unknown } = doc as Record<string, unknown>;
  const extra = Object.keys(unknown);
  if (extra.length > 0) throw new ValidationError(`unknown field(s): ${extra.join(", ")}`);
  if (dataType !== undefined && dataType !== OUTPUT_DATA_TYPE) {
    throw new ValidationError(`DATA_TYPE must be ${OUTPUT_DATA_TYPE}`);
  }
  if (!Array.isArray(result)) throw new ValidationError('"result" must be a list of {"id", "output"}');
  return result.map((item: unknown, i) => {
    const { id, output } = (item ?? {}) as Record<string, unknown>;
    if (typeof id !== "string" || !UUID_RE.test(id)) throw new ValidationError(`result[${i}].id must be a UUID`);
    if (typeof output !== "string") throw new ValidationError(`result[${i}].output must be a string`);
    return { id, output };
  });
}

function uuidKey(id: string): string {
  return id.toLowerCase().replaceAll("-", "");
}
