import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import type { UepBootstrap } from "../src/user-endpoint/bootstrap-types.js";
import {
  BootstrapError,
  MISSING_BOOTSTRAP_MESSAGE,
  parseBootstrap,
  readBootstrapLine,
} from "../src/user-endpoint/read-bootstrap.js";

const valid: UepBootstrap = {
  v: 1,
  endpointId: "11111111-1111-4111-8111-111111111111",
  uepId: "22222222-2222-5222-8222-222222222222",
  uepName: "uep.11111111-1111-4111-8111-111111111111.22222222-2222-5222-8222-222222222222",
  mepPid: 1,
  amqpUrl: "amqp://guest:guest@127.0.0.1:5672",
  serviceUser: "guest",
  template: { name: "user_config_template.yaml.j2", text: "engine: {type: ThreadPoolEngine}\n", siblings: {} },
  schema: null,
  userEnvironment: {},
  userConfig: {},
  userRuntime: null,
  parentConfig: {},
  mappedIdentity: null,
  identity: { id: "33333333-3333-4333-8333-333333333333", username: "me@localhost" },
  allowedFunctions: null,
};

describe("UEP bootstrap on stdin", () => {
  it("reads the first line and keeps the stream flowing so its end is seen", async () => {
    const stdin = new PassThrough();
    const read = readBootstrapLine(stdin);
    stdin.write(JSON.stringify(valid).slice(0, 10));
    stdin.write(`${JSON.stringify(valid).slice(10)}\nnoise after the line`);
    const { line, ended } = await read;
    expect(ended).toBe(false);
    expect(parseBootstrap(line)).toEqual(valid);
    const ends = new Promise((resolve) => stdin.once("end", resolve));
    stdin.end("more noise");
    await ends;
  });

  it("accepts a last line without a newline and reports that stdin ended", async () => {
    const stdin = new PassThrough();
    const read = readBootstrapLine(stdin);
    stdin.end(JSON.stringify(valid));
    await expect(read).resolves.toMatchObject({ ended: true });
  });

  it("refuses an empty stdin and a terminal with the hint", async () => {
    const empty = new PassThrough();
    const read = readBootstrapLine(empty);
    empty.end();
    await expect(read).rejects.toThrow(MISSING_BOOTSTRAP_MESSAGE);
    const tty = Object.assign(new PassThrough(), { isTTY: true });
    await expect(readBootstrapLine(tty)).rejects.toThrow(/not meant to be invoked manually/);
  });

  it("names what is wrong with a bad bootstrap", () => {
    expect(() => parseBootstrap("not json")).toThrow(BootstrapError);
    expect(() => parseBootstrap("[1]")).toThrow(/not a JSON object/);
    expect(() => parseBootstrap(JSON.stringify({ ...valid, v: 2 }))).toThrow(/version 2/);
    expect(() => parseBootstrap(JSON.stringify({ ...valid, amqpUrl: "" }))).toThrow(/amqpUrl/);
    expect(() => parseBootstrap(JSON.stringify({ ...valid, mepPid: "1" }))).toThrow(/mepPid/);
    expect(() => parseBootstrap(JSON.stringify({ ...valid, template: { name: "x" } }))).toThrow(/template/);
    expect(() => parseBootstrap(JSON.stringify({ ...valid, allowedFunctions: [1] }))).toThrow(/allowedFunctions/);
    expect(parseBootstrap(JSON.stringify({ ...valid, template: { error: "unreadable" } })).template).toEqual({
      error: "unreadable",
    });
  });
});
