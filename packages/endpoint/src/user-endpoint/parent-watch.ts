/**
 * "Die with parent": the UEP shuts down when its MEP goes away, however the
 * MEP died. Two signals, whichever comes first: the end of stdin (the MEP
 * holds the other end of the pipe, so the kernel closes it even on SIGKILL),
 * and a change of `process.ppid` (the UEP was re-parented), polled because a
 * grandchild could have inherited the pipe and kept it open.
 */
export interface ParentWatchOptions {
  stdin: NodeJS.ReadableStream;
  /** stdin had already ended while the bootstrap was read. */
  stdinEnded: boolean;
  parentPid: number;
  onGone(): void;
  /** @default 500 */
  pollMs?: number;
}

/** Starts watching; returns a function that stops it. `onGone` runs at most once. */
export function watchParent(options: ParentWatchOptions): () => void {
  const { stdin, parentPid, pollMs = 500 } = options;
  let fired = false;
  const gone = (): void => {
    if (fired) return;
    fired = true;
    stop();
    options.onGone();
  };
  const timer = setInterval(() => {
    if (process.ppid !== parentPid) gone();
  }, pollMs);
  // The poll alone must not keep the process alive.
  timer.unref();
  stdin.on("end", gone);
  stdin.on("close", gone);
  stdin.on("error", gone);
  function stop(): void {
    clearInterval(timer);
    stdin.removeListener("end", gone);
    stdin.removeListener("close", gone);
    stdin.removeListener("error", gone);
  }
  if (options.stdinEnded || process.ppid !== parentPid) queueMicrotask(gone);
  return stop;
}
