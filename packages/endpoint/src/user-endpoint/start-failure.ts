/**
 * `<uep dir>/start-failure.txt`: why a UEP could not start, left for its MEP.
 * The UEP fails the tasks it finds in its queue itself; tasks it could not
 * reach (no broker, or published after it stopped draining) are failed by the
 * MEP when the UEP exits with the start-failure code, with this same reason.
 */
import { closeSync, constants, fstatSync, openSync, readSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../logging.js";

const FILE = "start-failure.txt";
/** A reason is one sentence or a few lines; anything longer is cut. */
const MAX_BYTES = 8192;

export function clearStartFailure(uepDir: string): void {
  rmSync(join(uepDir, FILE), { force: true });
}

export function writeStartFailure(uepDir: string, reason: string, log: Logger): void {
  try {
    writeFileSync(join(uepDir, FILE), reason, { mode: 0o600 });
  } catch (err) {
    log.warn(`Could not leave the start failure for the endpoint manager: ${(err as Error).message}`);
  }
}

/**
 * The reason a UEP left, or undefined. Read by the MEP (root, in multi-user
 * mode) from a folder the UEP's user owns: never through a link, only a
 * regular file owned by `uid`, and only its first few KiB.
 */
export function readStartFailure(uepDir: string, uid: number): string | undefined {
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO planted there must not hang the MEP.
    fd = openSync(join(uepDir, FILE), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile() || stat.uid !== uid) return undefined;
    const buffer = Buffer.alloc(MAX_BYTES);
    const n = readSync(fd, buffer, 0, MAX_BYTES, 0);
    const text = buffer.subarray(0, n).toString("utf8").trim();
    return text === "" ? undefined : text;
  } finally {
    closeSync(fd);
  }
}
