/**
 * `conduit login [--device] | logout | whoami`: the SDK's small command line
 * (`npx conduit …`), for logging in before a script runs, or on a node
 * without a browser. The same commands as `conduit-endpoint`'s, and the same
 * tokens.json. Every failure is one sentence on stderr and exit code 1.
 */
import { ConduitError, loginCommand, logoutCommand, paths, terminalIo, whoamiCommand } from "@conduit/protocol";

const USAGE = `Usage: conduit <command>

Commands:
  login [--device]  log in to the service (a link, then the code it shows; --device: a code
                    to enter on another device) and cache the tokens in tokens.json
  logout            forget the login cached for the service, and revoke its refresh token
  whoami            show the identity the service sees, and where the credentials came from

The service is $CONDUIT_SERVICE_URL, else the URL in credentials.json, else http://127.0.0.1:8400.
Credentials, the first found: CONDUIT_CLIENT_ID and CONDUIT_CLIENT_SECRET (or
GLOBUS_COMPUTE_CLIENT_ID/_SECRET), CONDUIT_TOKEN, the login cached for the service in
tokens.json, credentials.json for that service.
`;

/** Runs the command in `args` (without node and the script); resolves the exit code. */
export async function runConduitCli(args: readonly string[]): Promise<number> {
  const [command, ...rest] = args;
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    process.stdout.write(USAGE);
    return command === undefined ? 1 : 0;
  }
  const options = { serviceUrl: paths.serviceUrl(), loginCommand: "npx conduit login" };
  const allowed = command === "login" ? ["--device"] : [];
  const unknown = rest.find((arg) => !allowed.includes(arg));
  try {
    if (unknown !== undefined) {
      throw new ConduitError("BAD_OPTION", `conduit ${command} does not take ${unknown}; see conduit --help.`);
    }
    let line: string;
    if (command === "login") {
      const device = rest.includes("--device");
      line = await loginCommand({ ...options, device, io: terminalIo(process.stderr) });
    } else if (command === "logout") line = await logoutCommand(options);
    else if (command === "whoami") line = await whoamiCommand(options);
    else throw new ConduitError("BAD_OPTION", `Unknown command ${command}; use login, logout or whoami.`);
    process.stdout.write(`${line}\n`);
    return 0;
  } catch (err) {
    const message = err instanceof ConduitError ? err.message : String((err as Error).message ?? err);
    process.stderr.write(`Error: ${message}\n`);
    return 1;
  }
}

process.exit(await runConduitCli(process.argv.slice(2)));
