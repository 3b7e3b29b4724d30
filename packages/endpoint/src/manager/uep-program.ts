/**
 * Which program starts a UEP (seed "Advanced Environment Customization"): the
 * `conduit-endpoint` found on the UEP's PATH — the PATH of the environment it
 * gets, `user_environment.yaml` applied — so an admin's wrapper script there
 * runs first; when there is none (npx, the demo, CI), or what is found is this
 * very endpoint's `bin/conduit-endpoint.js`, the endpoint's own program runs.
 *
 * The lookup is done as the target user sees it: only absolute entries, in
 * order, a file counting when that user may execute it. Security: a UEP runs
 * as its user, so a directory on that PATH that another account can write
 * (owned by someone other than root or the user, or group- or
 * world-writable) would let that account plant a `conduit-endpoint` that runs
 * as the user. Every directory the lookup consults (those before the hit and
 * the hit's, all of them when there is none), their parents, and the program
 * itself are checked. A multi-user endpoint (root starting UEPs as mapped
 * users) refuses to start the UEP, naming the directory and the fix: falling
 * back silently would skip a site's wrapper, warning would run the planted
 * program. A single-user endpoint only warns: its UEP runs as the MEP's own
 * user, whose shell already trusts that PATH, and refusing would break setups
 * such as a group-writable /usr/local/bin.
 */
import { lstatSync, realpathSync, type Stats, statSync } from "node:fs";
import { dirname, isAbsolute, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

export const UEP_PROGRAM_NAME = "conduit-endpoint";

/** The built CLI entry point (this file is dist/manager/uep-program.js). */
export const CLI_MAIN = fileURLToPath(new URL("../cli/main.js", import.meta.url));
/** The package's bin shim, which npm links as `conduit-endpoint`. */
const OWN_BIN = fileURLToPath(new URL("../../bin/conduit-endpoint.js", import.meta.url));

/** Whose view of PATH the lookup takes. */
export interface ProgramUser {
  uid: number;
  gid: number;
  uname: string;
  /** Supplementary groups (a mapped user's, from /etc/group). */
  groups?: number[];
}

export interface UepProgram {
  /** The wrapper found on PATH (an absolute path), or undefined: the endpoint's own program runs. */
  wrapper: string | undefined;
  /** What runs, for the log: the wrapper's path, or `<node> <dist/cli/main.js>`. */
  description: string;
  /** Unsafe PATH entries a single-user endpoint used anyway (one sentence each), to log. */
  warnings: string[];
}

export interface FindUepProgramOptions {
  /** Refuse (throw) instead of warning about a PATH entry another account can write. */
  strict: boolean;
}

/** The error a multi-user endpoint's refusal throws; its message names the entry and the fix. */
export class UnsafeUepPathError extends Error {
  override name = "UnsafeUepPathError";
}

export function findUepProgram(
  pathVar: string | undefined,
  user: ProgramUser,
  options: FindUepProgramOptions,
): UepProgram {
  const warnings: string[] = [];
  const own: UepProgram = {
    wrapper: undefined,
    description: `this endpoint's own program (${process.execPath} ${CLI_MAIN})`,
    warnings,
  };
  const unsafe = (problem: string): void => {
    const message = `${problem}, so another account could put a ${UEP_PROGRAM_NAME} there that runs as ${user.uname}; remove that entry from the PATH (user_environment.yaml or the endpoint's environment) or make it writable only by root or ${user.uname} (chown root, chmod go-w).`;
    if (options.strict) throw new UnsafeUepPathError(message);
    warnings.push(message);
  };
  const ownReal = realOrUndefined(OWN_BIN);
  for (const entry of (pathVar ?? "").split(":")) {
    // An empty or relative entry means "the current directory"; a UEP is never started through one.
    if (entry === "" || !isAbsolute(entry)) continue;
    const dir = resolve(entry);
    const dirProblem = chainProblem(dir, user);
    if (dirProblem) unsafe(`The PATH entry ${dir} ${dirProblem}`);
    const candidate = join(dir, UEP_PROGRAM_NAME);
    let real: string;
    let stat: Stats;
    try {
      real = realpathSync(candidate);
      stat = statSync(real);
    } catch {
      continue;
    }
    if (!stat.isFile() || !executableBy(stat, user)) continue;
    if (ownReal !== undefined && real === ownReal) return own;
    const fileProblem = statProblem(stat, user, false);
    if (fileProblem) unsafe(`${candidate}${real === candidate ? "" : ` (${real})`} ${fileProblem}`);
    if (dirname(real) !== dir) {
      const realDirProblem = chainProblem(dirname(real), user);
      if (realDirProblem) unsafe(`${dirname(real)}, where ${candidate} leads, ${realDirProblem}`);
    }
    return { wrapper: candidate, description: `${candidate} (the ${UEP_PROGRAM_NAME} on its PATH)`, warnings };
  }
  return own;
}

/**
 * What makes `path` or one of its parents writable by an account other than
 * root and `user` (undefined: nothing). A parent with the sticky bit is fine
 * (no one can rename another's entry in it); the last existing directory is
 * not, since a missing part could be created there.
 */
function chainProblem(path: string, user: ProgramUser): string | undefined {
  const parts = path.split(sep).filter((p) => p !== "");
  let current: string = sep;
  const chain = [sep, ...parts.map((p) => (current = join(current, p)))];
  for (let i = 0; i < chain.length; i++) {
    const at = chain[i] as string;
    let stat: Stats;
    try {
      stat = lstatSync(at);
    } catch {
      // Missing from here on: the previous (existing) directory must not let others create it.
      if (i > 0) {
        const previous = statSync(chain[i - 1] as string);
        const problem = statProblem(previous, user, false);
        if (problem) return `does not exist and ${chain[i - 1]} ${problem}`;
      }
      return undefined;
    }
    if (stat.isSymbolicLink()) {
      if (stat.uid !== 0 && stat.uid !== user.uid) return `goes through ${at}, a link owned by uid ${stat.uid}`;
      // The link's target is checked as a chain of its own.
      let target: string;
      try {
        target = realpathSync(at);
      } catch {
        return undefined;
      }
      const rest = chain.length > i + 1 ? path.slice(at.length) : "";
      return chainProblem(target + rest, user);
    }
    const last = i === chain.length - 1;
    const problem = statProblem(stat, user, !last);
    if (problem) return at === path ? problem : `is inside ${at}, which ${problem}`;
  }
  return undefined;
}

/** Why `stat` lets an account other than root and `user` change it (undefined: it does not). */
function statProblem(stat: Stats, user: ProgramUser, stickyOk: boolean): string | undefined {
  if (stat.uid !== 0 && stat.uid !== user.uid) return `is owned by uid ${stat.uid}`;
  const sticky = stickyOk && stat.isDirectory() && (stat.mode & 0o1000) !== 0;
  if (sticky) return undefined;
  if (stat.mode & 0o002) return "is writable by every user";
  if (stat.mode & 0o020) return `is writable by group ${stat.gid}`;
  return undefined;
}

/** Whether `user` may execute the file (owner, group or other bits, as the kernel picks them; root: any x bit). */
function executableBy(stat: Stats, user: ProgramUser): boolean {
  if (user.uid === 0) return (stat.mode & 0o111) !== 0;
  if (stat.uid === user.uid) return (stat.mode & 0o100) !== 0;
  if (stat.gid === user.gid || user.groups?.includes(stat.gid)) return (stat.mode & 0o010) !== 0;
  return (stat.mode & 0o001) !== 0;
}

function realOrUndefined(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}
