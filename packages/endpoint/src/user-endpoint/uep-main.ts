/**
 * Stand-alone entry of the user endpoint process:
 * `node dist/user-endpoint/uep-main.js <uep name>`, the bootstrap on stdin.
 * The CLI's hidden `_start-user-endpoint <uep name>` does the same.
 */
const uepName = process.argv[2];
if (!uepName) {
  process.stderr.write("Usage: uep-main <uep name> (the endpoint manager starts this; do not run it by hand).\n");
  process.exit(2);
}
// The config child starts first: its start and module loading overlap this process's (figure (e)).
const { startConfigChild } = await import("./config-child.js");
const configChild = startConfigChild();
// Loaded after the argument check: a usage error costs no module loading.
const [{ paths }, { runUserEndpoint }] = await Promise.all([import("@conduit/protocol"), import("./run.js")]);
const code = await runUserEndpoint({ stdin: process.stdin, uepName, userDir: paths.userDir(), configChild });
process.exit(code);
