/**
 * The `conduit-endpoint` command line. Every failure prints one sentence
 * naming the problem and the fix and exits non-zero; a stack trace only with
 * `--debug`.
 */
import { ConduitError, loginCommand, logoutCommand, paths, terminalIo, whoamiCommand } from "@conduit/protocol";
import { Command, CommanderError } from "commander";
import { listEndpoints } from "../manager/endpoint-state.js";
import { CONDUIT_VERSION } from "../version.js";
import { DEFAULT_UNIT_DIR, disableOnBoot, enabledMessage, enableOnBoot, UNIT_DIR_ENV } from "./boot-persistence.js";
import { configureEndpoint, configureMessage, newEndpointPaths } from "./configure.js";
import {
  type AssuranceFlags,
  DEFAULT_POLICY_DISPLAY_NAME,
  planAssurance,
  resolveAssurance,
} from "./configure-assurance.js";
import { deleteEndpoint } from "./delete.js";
import { testIdentityMapping } from "./idmap.js";
import { renderEndpointTable } from "./list.js";
import { restartEndpoint } from "./restart.js";
import { startEndpoint } from "./start.js";
import { stopEndpoint } from "./stop.js";

const print = (line: string) => process.stdout.write(`${line}\n`);

function buildProgram(setExitCode: (code: number) => void): Command {
  const program = new Command("conduit-endpoint")
    .description(
      "Run a Conduit compute endpoint: configure it, start it (it stays attached), stop it, list the endpoints of this machine.",
    )
    .version(CONDUIT_VERSION, "-V, --version", "print the version")
    .option("--debug", "log DEBUG lines, and print stack traces on errors")
    .helpOption("-h, --help", "show help")
    .configureHelp({ showGlobalOptions: true })
    .exitOverride()
    .addHelpText(
      "after",
      `
Endpoints live in $CONDUIT_USER_DIR (default ~/.conduit), one folder each.
The service is found at $CONDUIT_SERVICE_URL, else the URL in credentials.json,
else http://127.0.0.1:8400. Credentials, the first found: CONDUIT_CLIENT_ID and
CONDUIT_CLIENT_SECRET (or GLOBUS_COMPUTE_CLIENT_ID/_SECRET), CONDUIT_TOKEN, the
login cached for the service in tokens.json, credentials.json for that service.

Quickstart:
  conduit-endpoint configure my_endpoint
  conduit-endpoint start my_endpoint
  conduit-endpoint stop my_endpoint`,
    );

  program
    .command("configure")
    .description("create an endpoint folder with config.yaml, the user config template, schema and environment")
    .argument("<name>", "endpoint name: letters, digits, _ . -")
    .option("--display-name <name>", "name shown in the web UI (config.yaml display_name)")
    .option("--multi-user", "map submitting identities to local accounts (start it as root)")
    .option("--auth-policy <uuid>", "apply an existing authentication policy (config.yaml authentication_policy)")
    .option(
      "--auth-policy-project-id <uuid>",
      "create a policy in this project (absent: choose or create one on a terminal)",
    )
    .option("--auth-policy-display-name <name>", `name of the new policy (default "${DEFAULT_POLICY_DISPLAY_NAME}")`)
    .option("--auth-policy-description <text>", "description of the new policy")
    .option("--allowed-domains <a,b>", "new policy: identity domains that satisfy it (wildcards such as *.edu)")
    .option("--excluded-domains <a,b>", "new policy: identity domains that fail it")
    .option("--auth-timeout <seconds>", "new policy: maximum age of the last login; makes the policy High-Assurance")
    .option("--auth-policy-mfa-required", "new policy (High-Assurance only): require a second factor")
    .option(
      "--high-assurance",
      "High-Assurance endpoint: needs an HA policy and --subscription-id of an HA subscription",
    )
    .option("--subscription-id <uuid>", "the subscription the endpoint belongs to (config.yaml subscription_id)")
    .option("--contact-email <address>", "whom to contact about the endpoint, sent at registration")
    .action(async (name: string, opts: { displayName?: string; multiUser?: boolean } & AssuranceFlags) => {
      const userDir = paths.userDir();
      // Every check that needs no network first, then the name, then the service (which may create a policy).
      const plan = planAssurance(opts);
      newEndpointPaths(userDir, name);
      const assurance = await resolveAssurance(plan, {
        serviceUrl: paths.serviceUrl(),
        interactive: process.stdin.isTTY === true,
        io: terminalIo(process.stdout),
        warn: (line) => process.stderr.write(`Warning: ${line}\n`),
      });
      const configured = configureEndpoint({
        userDir,
        name,
        displayName: opts.displayName,
        multiUser: opts.multiUser === true,
        assurance,
      });
      process.stdout.write(configureMessage(configured));
    });

  program
    .command("start")
    .description("register the endpoint and run it, attached, until Ctrl+C or `conduit-endpoint stop`")
    .argument("<name>", "a configured endpoint")
    .option("--log-to-console", "also write the log to the console (stderr)")
    .action(async (name: string, opts: { logToConsole?: boolean }, cmd: Command) => {
      const debug = cmd.optsWithGlobals().debug === true;
      setExitCode(
        await startEndpoint({ userDir: paths.userDir(), name, logToConsole: opts.logToConsole === true, debug }),
      );
    });

  const session = { loginCommand: "conduit-endpoint login" };
  program
    .command("login")
    .description("log in to the service (a link to open, then the code it shows) and cache the tokens in tokens.json")
    .option("--device", "log in with a code entered on another device's browser (no code to paste back)")
    .action(async (opts: { device?: boolean }) => {
      const io = terminalIo(process.stdout);
      print(await loginCommand({ ...session, serviceUrl: paths.serviceUrl(), device: opts.device === true, io }));
    });

  program
    .command("logout")
    .description("forget the login cached for the service, and revoke its refresh token")
    .action(async () => {
      print(await logoutCommand({ ...session, serviceUrl: paths.serviceUrl() }));
    });

  program
    .command("whoami")
    .description("show the identity the service sees for the credentials in use, and where they came from")
    .action(async () => {
      print(await whoamiCommand({ ...session, serviceUrl: paths.serviceUrl() }));
    });

  program
    .command("stop")
    .description("stop a running endpoint and its user endpoint processes")
    .argument("<name>", "a configured endpoint")
    .action(async (name: string) => {
      await stopEndpoint({ userDir: paths.userDir(), name, print });
    });

  program
    .command("restart")
    .description("stop the endpoint if it runs, then start it attached (as `stop` then `start`)")
    .argument("<name>", "a configured endpoint")
    .option("--log-to-console", "also write the log to the console (stderr)")
    .action(async (name: string, opts: { logToConsole?: boolean }, cmd: Command) => {
      const debug = cmd.optsWithGlobals().debug === true;
      setExitCode(
        await restartEndpoint({
          userDir: paths.userDir(),
          name,
          logToConsole: opts.logToConsole === true,
          debug,
          print,
        }),
      );
    });

  program
    .command("list")
    .description("show the endpoints of this machine: id, status, name, and the cause of a Failed one")
    .action(() => {
      process.stdout.write(renderEndpointTable(listEndpoints(paths.userDir())));
    });

  program
    .command("delete")
    .description("delete a stopped endpoint's folder (and its user endpoint logs)")
    .argument("<name>", "a configured endpoint")
    .option("-y, --yes", "do not ask for confirmation")
    .action(async (name: string, opts: { yes?: boolean }) => {
      const deleted = await deleteEndpoint({ userDir: paths.userDir(), name, yes: opts.yes === true, print });
      if (!deleted) setExitCode(1);
    });

  const unitDirOption = `the systemd unit directory (default $${UNIT_DIR_ENV}, else ${DEFAULT_UNIT_DIR})`;
  program
    .command("enable-on-boot")
    .description("install a systemd unit that starts the endpoint at boot (checks its credentials first)")
    .argument("<name>", "a configured endpoint, not running")
    .option("--unit-dir <dir>", unitDirOption)
    .action(async (name: string, opts: { unitDir?: string }) => {
      const result = await enableOnBoot({ userDir: paths.userDir(), name, unitDir: opts.unitDir });
      if (result.installed) {
        process.stdout.write(enabledMessage(result.unit));
        return;
      }
      process.stderr.write(`Error: ${result.reason}\n`);
      process.stdout.write(`\n${result.text}`);
      setExitCode(1);
    });

  program
    .command("disable-on-boot")
    .description("print the commands that stop, disable and remove the endpoint's systemd unit (removes nothing)")
    .argument("<name>", "a configured endpoint with a unit")
    .option("--unit-dir <dir>", unitDirOption)
    .action((name: string, opts: { unitDir?: string }) => {
      process.stdout.write(disableOnBoot({ userDir: paths.userDir(), name, unitDir: opts.unitDir }));
    });

  program
    .command("render")
    .description("dry run: render the endpoint's user config template as a user endpoint would, and print the YAML")
    .argument("<name>", "a configured endpoint")
    .option("--vars <json>", "the user's variables (userEndpointConfig) as a JSON object", "{}")
    .option("--user <local user>", "fill mapped_identity.local from this local account")
    .option("--runtime <json>", "user_runtime as a JSON object (node_version, sdk_version, platform, arch, hostname)")
    .action(async (name: string, opts: { vars: string; user?: string; runtime?: string }) => {
      const printError = (line: string) => process.stderr.write(`${line}\n`);
      const printText = (text: string) => process.stdout.write(text);
      // Loaded here only: the renderer (WebAssembly) and the engines would otherwise load into every command, the MEP included.
      const { renderCommand } = await import("./render.js");
      setExitCode(await renderCommand({ userDir: paths.userDir(), name, ...opts, print: printText, printError }));
    });

  program
    .command("idmap")
    .description("check the endpoint's identity mapping")
    .command("test")
    .description("show which mapper and rule map an identity to which local user, without starting anything")
    .argument("<name>", "a configured endpoint with identity_mapping_config_path")
    .argument("<identity.json>", 'a JSON file with one identity: {"id": "<uuid>", "username": "…"}')
    .action(async (name: string, identityPath: string) => {
      const warn = (line: string) => process.stderr.write(`Warning: ${line}\n`);
      setExitCode(await testIdentityMapping({ userDir: paths.userDir(), name, identityPath, print, warn }));
    });

  program
    .command("_start-user-endpoint", { hidden: true })
    .description("run a user endpoint process (started by the manager endpoint process, bootstrap on stdin)")
    .argument("<uepName>")
    .action(async (uepName: string) => {
      // Loaded lazily: the UEP pulls in engines and the template renderer, which no other command needs.
      const { startUserEndpoint } = await import("./start-user-endpoint.js");
      setExitCode(await startUserEndpoint(uepName));
    });

  return program;
}

/**
 * Runs `conduit-endpoint` with `argv` (as `process.argv`: node, script, args…)
 * and resolves with the exit code; `start` resolves when the endpoint stops.
 */
export async function runCli(argv: readonly string[] = process.argv): Promise<number> {
  let exitCode = 0;
  const program = buildProgram((code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync([...argv]);
    return exitCode;
  } catch (err) {
    // Commander has already printed its own usage errors (and help/version, exit code 0).
    if (err instanceof CommanderError) return err.exitCode;
    const debug = argv.includes("--debug");
    process.stderr.write(`${errorSentence(err, debug)}\n`);
    if (debug && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
}

function errorSentence(err: unknown, debug: boolean): string {
  if (err instanceof ConduitError) return `Error: ${err.message}`;
  const message = err instanceof Error ? err.message : String(err);
  return `Error: ${message}${debug ? "" : " (run again with --debug for details)"}`;
}
