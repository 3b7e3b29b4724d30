/**
 * One socket write per turn of amqplib's frame muxer instead of one per frame.
 * amqplib's Mux writes every queued chunk (a publish, an ack, a method frame)
 * to the socket with its own `write()`, and a Node socket sends each at once:
 * under a burst the service made one `write` system call per ack and per
 * publish, the largest share of its CPU per task (issue 23). The service's
 * broker link is coalesced. Corking the
 * socket around the muxer's read loop hands the same bytes, in the same order,
 * to one `writev` when the loop ends; nothing waits for a later tick.
 */
import type { ConfirmChannel } from "amqplib";

/** The amqplib internals this relies on; when a version lacks them, nothing is changed. */
interface MuxInternals {
  out?: { cork(): void; uncork(): void };
  _readIncoming?: () => void;
  coalesced?: true;
}

/** Coalesces the writes of `channel`'s connection (once per connection; a no-op if amqplib's internals differ). */
export function coalesceWrites(channel: ConfirmChannel): void {
  const muxer = (channel as unknown as { connection?: { muxer?: MuxInternals } }).connection?.muxer;
  const out = muxer?.out;
  const readIncoming = muxer?._readIncoming;
  if (!muxer || muxer.coalesced || !out || typeof out.cork !== "function" || typeof readIncoming !== "function") {
    return;
  }
  muxer.coalesced = true;
  // Assigned on the instance: the muxer's drain listener and its scheduled reads call this._readIncoming().
  muxer._readIncoming = () => {
    out.cork();
    try {
      readIncoming.call(muxer);
    } finally {
      out.uncork();
    }
  };
}
