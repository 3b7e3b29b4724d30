/**
 * Newline-delimited JSON frames on a TCP stream (JSON text never contains a
 * raw newline). The reader bounds how much it buffers, so a peer that never
 * sends a newline cannot exhaust memory.
 */
import { StringDecoder } from "node:string_decoder";

export function encodeFrame(message: object): string {
  return `${JSON.stringify(message)}\n`;
}

export class FrameReader {
  private readonly decoder = new StringDecoder("utf8");
  private partial = "";

  /** `maxChars` may be raised later (e.g. once a peer has authenticated). */
  constructor(
    public maxChars: number,
    private readonly onFrame: (value: unknown) => void,
  ) {}

  /** Throws on a frame that is too long or not JSON; the connection should then be closed. */
  push(chunk: Buffer): void {
    let text = this.decoder.write(chunk);
    let newline = text.indexOf("\n");
    while (newline !== -1) {
      const line = this.partial + text.slice(0, newline);
      this.partial = "";
      text = text.slice(newline + 1);
      if (line.length > this.maxChars) throw tooLong(this.maxChars);
      if (line.length > 0) this.onFrame(JSON.parse(line));
      newline = text.indexOf("\n");
    }
    this.partial += text;
    if (this.partial.length > this.maxChars) throw tooLong(this.maxChars);
  }
}

function tooLong(maxChars: number): Error {
  return new Error(`a frame is longer than ${maxChars} characters`);
}

/** A short rendering of a malformed message for an error. */
export function describeMessage(raw: unknown): string {
  const text = JSON.stringify(raw) ?? String(raw);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
