/**
 * Renders and validates a UEP's user config template in a short-lived child
 * process (config-child-main.ts), not in the UEP. What only the start uses —
 * the template renderer with its WebAssembly, which V8 compiles in background
 * threads whose malloc arenas keep the memory, the schema validator (ajv) and
 * the YAML parser — would otherwise stay in the UEP for its whole life: the
 * child lets the UEP idle at ~13 MiB less (README, issue 23's (d)).
 *
 * Security: the child is the UEP's own child, so it runs as the UEP's user,
 * with no_new_privs, in the UEP's cgroup and environment; the template and the
 * user's variables are still first used after privileges were dropped, never
 * in the MEP, and rendered by the same pipeline (render.ts).
 */
import { fork } from "node:child_process";
import type { RenderInput } from "../config/render.js";
import type { UserEndpointConfig } from "../config/user-endpoint-config.js";
import { UepStartError } from "../errors.js";
import { builtEntryPath } from "../worker/worker-entry.js";

/** What the child answers: the rendered text (when rendering got that far), its `debug`, and the config or the error. */
export interface ConfigChildReply {
  rendered?: string;
  /** `debug: true` in the rendered text, read leniently (also when validation fails). */
  debug: boolean;
  config?: UserEndpointConfig;
  /** The one-sentence error of the step that failed (render, schema, config). */
  error?: string;
}

/** A config child started ahead of its input: it loads its modules while the UEP loads its own. */
export interface ConfigChild {
  /**
   * Sends the input; resolves with the child's answer, rejects only when the
   * child could not answer (it could not start, or was killed, e.g. by the
   * UEP's stop signal). Once per child.
   */
  render(input: RenderInput): Promise<ConfigChildReply>;
}

/**
 * Forks the config child now. The UEP's entry does this before it loads its
 * own modules, so the child's start and module loading (renderer, YAML, the
 * validators) overlap the UEP's instead of following its bootstrap (figure
 * (e)). A child never given its input exits when the UEP does (its IPC channel
 * closes).
 */
export function startConfigChild(): ConfigChild {
  // "advanced": the structured clone keeps what JSON would not (Infinity, NaN, undefined) as the in-process config did.
  const child = fork(builtEntryPath(new URL("./config-child-main.js", import.meta.url)), [], {
    execArgv: [],
    serialization: "advanced",
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  let reply: ConfigChildReply | undefined;
  const answered = new Promise<ConfigChildReply>((resolve, reject) => {
    child.once("message", (message: ConfigChildReply) => {
      reply = message;
    });
    child.once("error", (err) => reject(new UepStartError(`Could not start the config renderer: ${err.message}`)));
    child.once("exit", (code, signal) => {
      if (reply !== undefined) resolve(reply);
      else {
        reject(
          new UepStartError(
            `The user config template's renderer ended (${signal ?? `exit code ${code}`}) before it answered; see the log above.`,
          ),
        );
      }
    });
  });
  // Not awaited until render(): an early failure must not be an unhandled rejection meanwhile.
  answered.catch(() => undefined);
  return {
    render(input) {
      if (child.connected) child.send(input);
      return answered;
    },
  };
}
