/**
 * High Assurance against the running service (in-process, PGlite, a RabbitMQ
 * vhost of its own): `high_assurance` fixed at an endpoint's first
 * registration, HA functions confined to their endpoint and purged after the
 * retention period on the service's clock, the disclaimer, and HA results
 * forwarded to the SDK's queue as a notice without their payload.
 */
import { randomUUID } from "node:crypto";
import {
  type EndpointInfo,
  HA_DISCLAIMER,
  JSON_DATA,
  RESULTS_EXCHANGE,
  type ResultMessage,
  resultsRoutingKey,
  SOURCE_CODE,
  type SubmitResponse,
  type TaskStatusResponse,
  taskGroupResultQueue,
} from "@conduit/protocol";
import { beforeAll, describe, expect, it } from "vitest";
import { createHighAssuranceKeys, type HighAssuranceKeys } from "../../../scripts/local-stack.mjs";
import { useApiService } from "./helpers/api-suite.js";
import { submitBody } from "./helpers/rest.js";

const DAY_MS = 86_400_000;
/** The service's clock: moved forward by the tests, never back. */
let now = Date.now();

describe("High Assurance", () => {
  const api = useApiService("pglite", { clock: () => now });
  const { call, expectError, registerEndpoint, asEndpoint, takeResults } = api;
  /** An HA registration names an HA policy and an HA subscription. */
  let haKeys: HighAssuranceKeys;
  beforeAll(async () => {
    haKeys = await createHighAssuranceKeys(api.service.url, api.service.adminToken);
  });

  async function registerHaFunction(haEndpointId: string, data = `(x) => x + ${Math.random()}`, token?: string) {
    return call<{ function_id: string; disclaimer?: string }>("POST", "/v1/functions", {
      token,
      body: { function: { strategy: SOURCE_CODE, data }, ha_endpoint_id: haEndpointId },
    });
  }

  async function haFunction(haEndpointId: string): Promise<string> {
    const r = await registerHaFunction(haEndpointId);
    expect(r.status).toBe(200);
    return r.body.function_id;
  }

  const submit = (endpointId: string, functionId: string) =>
    call<SubmitResponse>("POST", `/v1/endpoints/${endpointId}/submit`, { body: submitBody(functionId) });

  it("fixes high_assurance at the first registration: a change either way is refused, naming the way out", async () => {
    const ha = await registerEndpoint({ name: "phi", ...haKeys });
    // The MEP's restart says the same: accepted.
    await registerEndpoint({ endpoint_id: ha, name: "phi", ...haKeys });
    const downgrade = await call("POST", "/v1/endpoints", { body: { endpoint_id: ha, name: "phi" } });
    const down = expectError(downgrade, 409, "HIGH_ASSURANCE_FIXED").message;
    expect(down).toBe(
      `Endpoint ${ha} (phi) was registered High-Assurance at its first registration, which cannot change; to run without High Assurance, configure a new endpoint (conduit-endpoint configure <new name>) and start that one.`,
    );

    const plain = await registerEndpoint({ name: "lab" });
    const upgrade = await call("POST", "/v1/endpoints", {
      body: { endpoint_id: plain, name: "lab", ...haKeys },
    });
    expect(expectError(upgrade, 409, "HIGH_ASSURANCE_FIXED").message).toContain(
      `Endpoint ${plain} (lab) was registered not High-Assurance at its first registration, which cannot change; to run with High Assurance, configure a new endpoint`,
    );

    // Nothing changed, and the listing says which is which.
    const listed = (await call<EndpointInfo[]>("GET", "/v1/endpoints")).body;
    expect(listed.find((e) => e.endpoint_id === ha)).toMatchObject({ name: "phi", high_assurance: true });
    expect(listed.find((e) => e.endpoint_id === plain)).toMatchObject({ name: "lab", high_assurance: false });
    // Another identity naming the id is told it is taken, not what the endpoint is.
    const stolen = await call("POST", "/v1/endpoints", { token: api.bobToken, body: { endpoint_id: ha, name: "x" } });
    expect(expectError(stolen, 409, "ENDPOINT_ID_CONFLICT").message).not.toContain("High-Assurance");
  });

  it("registers HA functions only for an HA endpoint the caller may use, with the disclaimer", async () => {
    const ha = await registerEndpoint({ name: "phi", ...haKeys });
    const plain = await registerEndpoint({ name: "lab" });
    const data = `(x) => x * ${Math.random()}`;

    const registered = await registerHaFunction(ha, data);
    expect(registered).toEqual({ status: 200, body: { function_id: expect.any(String), disclaimer: HA_DISCLAIMER } });
    expect(HA_DISCLAIMER).toBe(
      "It is your responsibility to ensure disclosure of regulated data, such as Protected Health Information, resulting from the submission of this function and its arguments is legally authorized.",
    );
    const id = registered.body.function_id;
    expect((await registerHaFunction(ha, data)).body.function_id).toBe(id);
    expect((await call("GET", `/v1/functions/${id}`)).body).toMatchObject({ function_id: id, ha_endpoint_id: ha });
    // The same payload without an endpoint is another function, and carries no disclaimer.
    const open = await call<{ function_id: string }>("POST", "/v1/functions", {
      body: { function: { strategy: SOURCE_CODE, data } },
    });
    expect(open.body).toEqual({ function_id: expect.any(String) });
    expect(open.body.function_id).not.toBe(id);

    expect(expectError(await registerHaFunction(plain), 400, "ENDPOINT_NOT_HIGH_ASSURANCE").message).toBe(
      `Endpoint ${plain} is not a High-Assurance endpoint, so it cannot have High-Assurance functions; name an endpoint configured with --high-assurance in haEndpointId, or register the function without haEndpointId.`,
    );
    expectError(await registerHaFunction(randomUUID()), 404, "ENDPOINT_NOT_FOUND");
    // Bob's single-user endpoint is not one the administrator may submit to.
    const bobs = await registerEndpoint({ name: "bobs", ...haKeys }, api.bobToken);
    expectError(await registerHaFunction(bobs), 403, "ENDPOINT_NOT_PERMITTED");
  });

  it("runs an HA function on its endpoint only (403 naming both), and answers submits to an HA endpoint with the disclaimer", async () => {
    const ha = await registerEndpoint({ name: "phi", ...haKeys });
    const otherHa = await registerEndpoint({ name: "phi2", ...haKeys });
    const plain = await registerEndpoint({ name: "lab" });
    const fn = await haFunction(ha);

    for (const elsewhere of [otherHa, plain]) {
      expect(expectError(await submit(elsewhere, fn), 403, "HA_FUNCTION_NOT_PERMITTED").message).toBe(
        `Function ${fn} is a High-Assurance function of endpoint ${ha} and may not run on endpoint ${elsewhere}; submit it to endpoint ${ha}, or register it for endpoint ${elsewhere}.`,
      );
    }
    const accepted = await submit(ha, fn);
    expect(accepted.status).toBe(200);
    expect(accepted.body.disclaimer).toBe(HA_DISCLAIMER);

    const open = await api.registerFunction();
    const plainSubmit = await submit(plain, open);
    expect(plainSubmit.status).toBe(200);
    expect(plainSubmit.body).not.toHaveProperty("disclaimer");
  });

  it("purges an HA function unused for the retention period (90 days by default), on the service's clock", async () => {
    const ha = await registerEndpoint({ name: "phi", ...haKeys });
    const used = await haFunction(ha);
    const idle = await haFunction(ha);
    const kept = await api.registerFunction();

    now += 89 * DAY_MS;
    expect((await submit(ha, used)).status).toBe(200);
    expect(await api.service.purgeIdleHaFunctions()).toEqual([]);

    // 91 days after its registration, 2 after the other's submit.
    now += 2 * DAY_MS;
    const purged = await api.service.purgeIdleHaFunctions();
    expect(purged).toContain(idle);
    expect(purged).not.toContain(used);
    expectError(await call("GET", `/v1/functions/${idle}`), 404, "FUNCTION_NOT_FOUND");
    expectError(await submit(ha, idle), 404, "FUNCTION_NOT_FOUND");
    expect((await submit(ha, used)).status).toBe(200);

    // Due, and refused at submit even before the job runs; functions without an endpoint stay.
    now += 91 * DAY_MS;
    expectError(await submit(ha, used), 404, "FUNCTION_NOT_FOUND");
    expect(await api.service.purgeIdleHaFunctions()).toContain(used);
    expect((await call("GET", `/v1/functions/${kept}`)).status).toBe(200);
  });

  it("stores an HA endpoint's result but forwards only a notice without the payload", async () => {
    const ha = await registerEndpoint({ name: "phi", ...haKeys });
    const fn = await haFunction(ha);
    const r = await submit(ha, fn);
    expect(r.status).toBe(200);
    const { task_group_id: tg, uep_id: uepId, task_ids: taskIds } = r.body;
    const again = (await submit(ha, fn)).body;
    const [ok, bad] = [taskIds[0], again.task_ids[0]];
    const ep = await asEndpoint(ha);
    const completedAt = Date.now();
    const publish = (message: object) =>
      ep.publish(RESULTS_EXCHANGE, resultsRoutingKey(ha), Buffer.from(JSON.stringify(message)));
    publish({
      v: 1,
      kind: "result",
      taskId: ok,
      endpointId: ha,
      uepId,
      state: "success",
      result: { strategy: JSON_DATA, data: '"regulated"' },
      completedAt,
    });
    const { results } = await takeResults(taskGroupResultQueue(tg), 1);
    expect(results).toEqual([
      {
        v: 1,
        kind: "result",
        taskId: ok,
        endpointId: ha,
        uepId,
        taskGroupId: tg,
        state: "success",
        completedAt,
        highAssurance: true,
      } satisfies ResultMessage,
    ]);
    expect((await call<TaskStatusResponse>("GET", `/v1/tasks/${ok}`)).body).toMatchObject({
      state: "success",
      result: { strategy: JSON_DATA, data: '"regulated"' },
    });

    // A failure's error (which may quote the data) is not pushed either.
    publish({
      v: 1,
      kind: "result",
      taskId: bad,
      endpointId: ha,
      uepId: again.uep_id,
      state: "failed",
      error: { code: "TASK_EXCEPTION", name: "Error", message: "patient 42" },
      completedAt,
    });
    const [notice] = (await takeResults(taskGroupResultQueue(again.task_group_id), 1)).results;
    expect(notice).toMatchObject({ taskId: bad, state: "failed", highAssurance: true });
    expect(notice).not.toHaveProperty("error");
    expect(notice).not.toHaveProperty("result");
  });
});
