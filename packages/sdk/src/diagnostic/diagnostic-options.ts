/**
 * `conduit-diagnostic`'s command line: the seed's options (`-h -p -k -v -e -c`)
 * and upstream's newer `-r`, parsed once into a frozen object; a bad value is
 * one sentence naming the option and what it takes.
 */
import { homedir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

export interface DiagnosticOptions {
  /** Print to stdout instead of writing the archive. @default false */
  printOnly: boolean;
  /** How much of each file to read, from its end. @default 1024 */
  logKb: number;
  /** Name each section as it runs (when writing the archive). @default false */
  verbose: boolean;
  /** Send a sample task to this endpoint. */
  endpointUuid: string | undefined;
  /** Where the endpoint directories are. @default `$CONDUIT_USER_DIR`, else `~/.conduit` */
  configDir: string;
  /** How many endpoints (the most recently modified) to collect files from. @default 2 */
  recentEndpoints: number;
  /** A broker to check instead of the ones the service names. */
  amqpUrl: string | undefined;
  help: boolean;
}

export const HELP = `usage: conduit-diagnostic [-h] [-p] [-k number] [-v] [-e ENDPOINT_UUID] [-c CONFIG_DIR] [-r number] [--amqp-url URL]

Run diagnostics for Conduit

options:
  -h, --help            show this help message and exit
  -p, --print-only      Do not generate a Gzip-compressed file. Print diagnostic results to the console instead.
  -k number, --log-kb number
                        Specify the number of kilobytes (KB) to read from the end of each log and config
                        file. Defaults to 1024 KB (1 MB) per file.
  -v, --verbose         When writing diagnostic output to local compressed file, also print the name of each test
                        to stdout as they are being run, to help monitor diagnostic progress.
  -e ENDPOINT_UUID, --endpoint-uuid ENDPOINT_UUID
                        Test an endpoint by registering a sample function and sending a task to it using the newly
                        registered function (waits at most 15 s). An endpoint UUID is required.
  -c CONFIG_DIR, --config-dir CONFIG_DIR
                        Gather endpoint configuration and log info from the specified parent directory instead of
                        the default ~/.conduit or what is set in $CONDUIT_USER_DIR
  -r number, --recent-endpoints number
                        Collect the files of only this many endpoints, the most recently modified first.
                        Defaults to 2.
  --amqp-url URL        Check this broker (amqp:// or amqps://) instead of the one the service hands out
                        (or, without a token, the service's host on ports 5672 and 5671).

This utility gathers local hardware specifications, tests connectivity to the Conduit service and its
broker, and collates portions of local endpoint log and config files, if present, to a local compressed
file. Secrets (tokens, passwords, client secrets, broker credentials, private keys) are redacted.
`;

/** A bad command line: the sentence to print (exit 64, as EX_USAGE). */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function parseDiagnosticArgs(argv: readonly string[]): Readonly<DiagnosticOptions> {
  let values: ReturnType<typeof parse>["values"];
  try {
    values = parse(argv).values;
  } catch (err) {
    throw new UsageError(`${(err as Error).message.replace(/\.$/, "")}; run conduit-diagnostic -h for the options.`);
  }
  const envDir = process.env.CONDUIT_USER_DIR;
  const options: DiagnosticOptions = {
    help: values.help ?? false,
    printOnly: values["print-only"] ?? false,
    verbose: values.verbose ?? false,
    logKb: wholeNumber("-k/--log-kb", values["log-kb"], 1024, 1),
    recentEndpoints: wholeNumber("-r/--recent-endpoints", values["recent-endpoints"], 2, 0),
    endpointUuid: values["endpoint-uuid"],
    configDir: values["config-dir"] ?? (envDir ? envDir : join(homedir(), ".conduit")),
    amqpUrl: values["amqp-url"],
  };
  if (options.endpointUuid !== undefined && !UUID.test(options.endpointUuid)) {
    throw new UsageError(
      `-e/--endpoint-uuid ${JSON.stringify(options.endpointUuid)} is not a UUID; pass the endpoint's id as conduit-endpoint list shows it.`,
    );
  }
  if (options.amqpUrl !== undefined && !/^amqps?:\/\/[^/]/.test(options.amqpUrl)) {
    throw new UsageError(
      `--amqp-url must be an amqp:// or amqps:// URL (e.g. amqp://broker.example.org:5672), got ${JSON.stringify(options.amqpUrl)}.`,
    );
  }
  return Object.freeze(options);
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: false,
    strict: true,
    options: {
      help: { type: "boolean", short: "h" },
      "print-only": { type: "boolean", short: "p" },
      "log-kb": { type: "string", short: "k" },
      verbose: { type: "boolean", short: "v" },
      "endpoint-uuid": { type: "string", short: "e" },
      "config-dir": { type: "string", short: "c" },
      "recent-endpoints": { type: "string", short: "r" },
      "amqp-url": { type: "string" },
    },
  });
}

function wholeNumber(option: string, text: string | undefined, fallback: number, min: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || !Number.isSafeInteger(value)) {
    throw new UsageError(
      `${option} takes a whole number${min > 0 ? ` of at least ${min}` : ""}, got ${JSON.stringify(text)}.`,
    );
  }
  return value;
}
