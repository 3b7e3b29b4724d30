/**
 * /metrics and /readyz on a whole Conduit (real CLIs, RabbitMQ, PGlite): the
 * administrator scrapes twice around a batch of tasks and sees the counters,
 * the round-trip histogram and the HTTP histogram move; anyone else gets 403.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type E2eStack, withStack } from "./helpers.js";

let stack: E2eStack;
beforeAll(async () => {
  stack = await withStack({ endpointName: "metrics_ep" });
});
afterAll(async () => {
  await stack?.dispose();
});

async function scrape(token: string): Promise<{ status: number; type: string | null; text: string }> {
  const response = await fetch(`${stack.serviceUrl}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  return { status: response.status, type: response.headers.get("content-type"), text: await response.text() };
}

/** The value of one sample line, `name{labels} value`, or 0 when the series is absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const labelText = line.slice(name.length).split("}")[0];
    if (wanted.every((w) => labelText.includes(w))) return Number(line.split(" ").at(-1));
  }
  return 0;
}

describe("metrics", () => {
  it("counts submits, results and round trips between two scrapes", async () => {
    const before = await scrape(stack.token);
    expect(before.status).toBe(200);
    expect(before.type).toMatch(/^text\/plain; version=0\.0\.4/);
    const endpoint = { endpoint: stack.endpointId };
    const submitted0 = sample(before.text, "conduit_tasks_submitted_total", endpoint);

    const ex = stack.executor();
    const square = (x: number) => x * x;
    const failing = () => {
      throw new Error("on purpose");
    };
    const values = await Promise.all(Array.from({ length: 20 }, (_, i) => ex.submit(square, i).result()));
    expect(values[19]).toBe(361);
    await expect(ex.submit(failing).result()).rejects.toThrow(/on purpose/);

    const after = await scrape(stack.token);
    expect(after.status).toBe(200);
    expect(sample(after.text, "conduit_tasks_submitted_total", endpoint) - submitted0).toBe(21);
    expect(sample(after.text, "conduit_task_results_total", { ...endpoint, state: "success" })).toBe(20);
    expect(sample(after.text, "conduit_task_results_total", { ...endpoint, state: "failed" })).toBe(1);
    expect(sample(after.text, "conduit_task_round_trip_seconds_count", endpoint)).toBe(21);
    // The submit route's latency, labelled by its pattern, not by the endpoint id in the URL.
    const submits = sample(after.text, "conduit_http_request_duration_seconds_count", {
      method: "POST",
      route: "/v1/endpoints/:endpoint_id/submit",
      status: "200",
    });
    expect(submits).toBeGreaterThan(0);
    expect(after.text).not.toContain(`route="/v1/endpoints/${stack.endpointId}`);
    // Read from the store and the broker: the endpoint's UEP and its (now empty) task queue.
    expect(sample(after.text, "conduit_user_endpoints", { ...endpoint, seen: "any" })).toBeGreaterThanOrEqual(1);
    expect(after.text).toMatch(/conduit_queue_messages\{queue="conduit\.results",endpoint="",kind="ready"\} \d+/);
  });

  it("answers 403 to anyone but the administrator, and 401 without a token", async () => {
    const response = await fetch(`${stack.serviceUrl}/v1/admin/identities`, {
      method: "POST",
      headers: { authorization: `Bearer ${stack.token}`, "content-type": "application/json" },
      body: JSON.stringify({ username: "metrics-reader@example.org" }),
    });
    expect(response.status).toBe(201);
    const { token } = (await response.json()) as { token: string };
    const denied = await scrape(token);
    expect(denied.status).toBe(403);
    expect(JSON.parse(denied.text)).toMatchObject({ code: "ADMIN_ONLY" });
    expect(JSON.parse(denied.text).message).toContain("read metrics");
    expect((await fetch(`${stack.serviceUrl}/metrics`)).status).toBe(401);
  });

  it("is ready when the store and the broker answer, without a token", async () => {
    const response = await fetch(`${stack.serviceUrl}/readyz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: "ready" });
  });
});
