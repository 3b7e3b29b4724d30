import type { ResultBatchMessage, ResultMessage } from "@conduit/protocol";
import type { Channel } from "amqplib";
import { afterAll, beforeAll, expect } from "vitest";
import type { RunningService, ServiceOptions } from "../../src/index.js";
import { openChannel } from "./broker.js";
import { restHelpers } from "./rest.js";
import { startTestService, type TestStore } from "./service.js";

export const MAX_TASK_BYTES = 100_000;
export const MAX_REQUEST_BYTES = 1_000_000;

/** @param extra options on top of the suite's (e.g. a `clock`). */
export function useApiService(store: TestStore, extra: ServiceOptions = {}) {
  const disposers: Array<() => Promise<void>> = [];
  let service: RunningService;
  let amqpUrl: string;
  /** What endpoints and SDKs are told: another host, the same vhost; each gets its own account on it. */
  let publicUrl: string;
  let channel: Channel;
  let token: string;
  let bobToken: string;

  beforeAll(async () => {
    const publicUrlFor = (vhostUrl: string) => `amqp://broker.example.org:5672${new URL(vhostUrl).pathname}`;
    const started = await startTestService(
      (vhostUrl) => ({
        amqpPublicUrl: publicUrlFor(vhostUrl),
        maxTaskBytes: MAX_TASK_BYTES,
        maxRequestBytes: MAX_REQUEST_BYTES,
        ...extra,
      }),
      store,
    );
    disposers.push(started.dispose);
    service = started.value;
    amqpUrl = started.amqpUrl;
    publicUrl = publicUrlFor(amqpUrl);
    token = service.adminToken;
    bobToken = (await service.createIdentity("bob@example.org", { name: "Bob" })).token;
    const ch = await openChannel(amqpUrl);
    disposers.push(() => ch.close());
    channel = ch.channel;
  });

  afterAll(async () => {
    await closeEndpointLinks();
    for (const dispose of disposers.reverse()) await dispose();
  });

  /** The public URL with `user`'s scoped login (any password). */
  const scopedUrl = (user: string) => {
    const [, rest] = publicUrl.split("://");
    return expect.stringMatching(new RegExp(`^amqp://${user}:[^@:/]+@${rest.replaceAll(".", "\\.")}$`));
  };

  const { call, expectError, registerEndpoint, registerFunction, asEndpoint, closeEndpointLinks } = restHelpers(
    () => ({ url: service.url, token }),
    (url) => url.replace("broker.example.org:5672", new URL(amqpUrl).host),
  );

  /** Takes one message from a queue, waiting for it to arrive. */
  async function take<T>(queue: string): Promise<T> {
    let got: T | undefined;
    await expect
      .poll(
        async () => {
          const msg = await channel.get(queue, { noAck: true });
          if (msg) got = JSON.parse(msg.content.toString()) as T;
          return got !== undefined;
        },
        { timeout: 10_000, interval: 50 },
      )
      .toBe(true);
    return got!;
  }

  /** Takes forwarded messages (`result` or `results`) until `n` results arrived; also says how many messages carried them. */
  async function takeResults(queue: string, n: number): Promise<{ results: ResultMessage[]; messages: number }> {
    const results: ResultMessage[] = [];
    let messages = 0;
    while (results.length < n) {
      const m = await take<ResultMessage | ResultBatchMessage>(queue);
      messages++;
      results.push(...(m.kind === "results" ? m.results : [m]));
    }
    return { results, messages };
  }

  async function queueLength(queue: string): Promise<number> {
    return (await channel.checkQueue(queue)).messageCount;
  }

  return {
    get service(): RunningService {
      return service;
    },
    get token(): string {
      return token;
    },
    get bobToken(): string {
      return bobToken;
    },
    scopedUrl,
    call,
    expectError,
    registerEndpoint,
    registerFunction,
    asEndpoint,
    take,
    takeResults,
    queueLength,
  };
}
