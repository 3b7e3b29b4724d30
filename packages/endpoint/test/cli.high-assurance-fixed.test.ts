/**
 * The service's refusal of a registration that would change an endpoint's
 * High Assurance, as `conduit-endpoint start` shows it: one sentence naming
 * the endpoint and the way out, exit 1, and `registration refused (HTTP 409)`
 * in `list`. The endpoint was first registered High-Assurance by hand (the
 * REST route, as a MEP configured with --high-assurance does); this start
 * registers it without.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createHighAssuranceKeys } from "../../../scripts/local-stack.mjs";
import { cliEnv, listStates, runCli, tempUserDir, useTestService } from "./cli.helpers.js";

const context = useTestService();

describe("conduit-endpoint start of an endpoint whose High Assurance would change", () => {
  it("is refused with the service's sentence naming the endpoint and a new endpoint as the way out", async () => {
    const { url, token } = context.service;
    const userDir = tempUserDir();
    const env = cliEnv(userDir, context.service);
    expect((await runCli(["configure", "phi"], env)).code).toBe(0);
    const registered = await fetch(`${url}/v1/endpoints`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "phi", ...(await createHighAssuranceKeys(url, token)) }),
    });
    expect(registered.status).toBe(200);
    const { endpoint_id: id } = (await registered.json()) as { endpoint_id: string };
    writeFileSync(join(userDir, "phi", "endpoint.json"), `${JSON.stringify({ endpoint_id: id })}\n`);

    const refused = await runCli(["start", "phi"], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim()).toBe(
      `Error: The Conduit service at ${url} refused to register endpoint phi (HTTP 409): Endpoint ${id} (phi) was registered High-Assurance at its first registration, which cannot change; to run without High Assurance, configure a new endpoint (conduit-endpoint configure <new name>) and start that one.`,
    );
    expect((await listStates(env)).get("phi")).toMatchObject({
      id,
      status: "Failed",
      cause: "registration refused (HTTP 409)",
    });
  }, 90_000);
});
