/**
 * `coalesceWrites`: the frames amqplib's muxer takes in one turn reach the
 * socket as one `writev`, byte for byte in order, instead of one write each;
 * back-pressure (a full socket) still pauses the muxer until `drain`.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { PassThrough, Writable } from "node:stream";
import type { ConfirmChannel } from "amqplib";
import { describe, expect, it } from "vitest";
import { coalesceWrites } from "../src/coalesced-writes.js";

const require = createRequire(import.meta.url);
// The real muxer of the amqplib Conduit runs with, not a stand-in (amqplib does not export it).
const { Mux } = require(join(dirname(require.resolve("amqplib")), "lib/mux.js")) as {
  Mux: new (out: Writable) => { pipeFrom(readable: PassThrough): void };
};

/** A socket stand-in that records each write system call it would make. */
function recordingSocket(highWaterMark = 16 * 1024) {
  const calls: Buffer[][] = [];
  const out = new Writable({
    highWaterMark,
    write(chunk: Buffer, _enc, done) {
      calls.push([chunk]);
      done();
    },
    writev(chunks, done) {
      calls.push(chunks.map((c) => c.chunk as Buffer));
      done();
    },
  });
  return { out, calls };
}

function channelOf(muxer: unknown): ConfirmChannel {
  return { connection: { muxer } } as unknown as ConfirmChannel;
}

/** Frames queued on two channel buffers in one tick, then one muxer turn. */
async function muxFrames(coalesce: boolean) {
  const { out, calls } = recordingSocket();
  const muxer = new Mux(out);
  if (coalesce) coalesceWrites(channelOf(muxer));
  const a = new PassThrough({ objectMode: true });
  const b = new PassThrough({ objectMode: true });
  muxer.pipeFrom(a);
  muxer.pipeFrom(b);
  for (let i = 0; i < 5; i++) {
    a.write(Buffer.from(`a${i};`));
    b.write(Buffer.from(`b${i};`));
  }
  await new Promise((resolve) => setTimeout(resolve, 20));
  return calls;
}

describe("coalesceWrites", () => {
  it("hands a muxer turn's frames to the socket in one writev, in the same order", async () => {
    const plain = await muxFrames(false);
    const coalesced = await muxFrames(true);
    // Without it, one write per frame (the cost this removes).
    expect(plain.length).toBe(10);
    expect(coalesced.length).toBe(1);
    expect(Buffer.concat(coalesced.flat()).toString()).toBe(Buffer.concat(plain.flat()).toString());
  });

  it("still stops at a full socket and goes on after drain", async () => {
    // A socket that holds two frames' worth before it reports itself full.
    const { out, calls } = recordingSocket(8);
    const muxer = new Mux(out);
    coalesceWrites(channelOf(muxer));
    const a = new PassThrough({ objectMode: true });
    muxer.pipeFrom(a);
    const frames = Array.from({ length: 20 }, (_, i) => Buffer.from(`f${String(i).padStart(2, "0")};`));
    for (const f of frames) a.write(f);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(calls.length).toBeGreaterThan(1);
    expect(Buffer.concat(calls.flat()).toString()).toBe(Buffer.concat(frames).toString());
  });

  it("changes nothing when the channel has no muxer it knows", () => {
    expect(() => coalesceWrites({} as ConfirmChannel)).not.toThrow();
    const muxer = { out: {} };
    coalesceWrites(channelOf(muxer));
    expect(muxer).toEqual({ out: {} });
  });
});
