/**
 * Projects, authentication policies and subscriptions over REST, on PGlite and
 * Postgres: what each answers, who may change what (owners and the
 * administrator; anyone else 403), the refusals with their sentences, and the
 * registration of an endpoint naming a policy and a subscription.
 */
import type { AuthPolicyInfo, ProjectInfo, SubscriptionInfo } from "@conduit/protocol";
import { describe, expect, it } from "vitest";
import { useApiService } from "./helpers/api-suite.js";
import { TEST_STORES } from "./helpers/service.js";

describe.each(TEST_STORES)("authentication policy routes on $name", ({ store }) => {
  const api = useApiService(store);
  const { call, expectError } = api;

  async function project(token?: string, name = "Lab"): Promise<ProjectInfo> {
    const r = await call<ProjectInfo>("POST", "/v1/projects", {
      token,
      body: { display_name: name, contact_email: "lab@example.edu" },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body;
  }

  async function policy(projectId: string, body: Record<string, unknown> = {}, token?: string) {
    return call<AuthPolicyInfo>("POST", "/v1/auth_policies", {
      token,
      body: { project_id: projectId, display_name: "Campus only", ...body },
    });
  }

  it("creates, lists, reads, replaces and deletes a policy in one's own project", async () => {
    const p = await project(api.bobToken);
    expect(p).toMatchObject({ display_name: "Lab", description: "", contact_email: "lab@example.edu" });
    const created = await policy(
      p.id,
      {
        description: "Only our campus",
        domain_constraints_include: ["*.Example.edu", "example.edu"],
        domain_constraints_exclude: ["guest.example.edu"],
        authentication_assurance_timeout: 3600,
      },
      api.bobToken,
    );
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({
      project_id: p.id,
      owner_id: p.owner_id,
      description: "Only our campus",
      domain_constraints_include: ["*.example.edu", "example.edu"],
      domain_constraints_exclude: ["guest.example.edu"],
      high_assurance: false,
      authentication_assurance_timeout: 3600,
      required_mfa: false,
    });
    expect(created.body.warnings).toBeUndefined();
    const id = created.body.id;
    const mine = await call<{ policies: AuthPolicyInfo[] }>("GET", "/v1/auth_policies", { token: api.bobToken });
    expect(mine.body.policies.map((x) => x.id)).toEqual([id]);
    const replaced = await call<AuthPolicyInfo>("PUT", `/v1/auth_policies/${id}`, {
      token: api.bobToken,
      body: { display_name: "Renamed", high_assurance: true, required_mfa: true },
    });
    expect(replaced.status, JSON.stringify(replaced.body)).toBe(200);
    expect(replaced.body).toMatchObject({
      display_name: "Renamed",
      domain_constraints_include: [],
      high_assurance: true,
      required_mfa: true,
      authentication_assurance_timeout: null,
    });
    // Deleting the project is refused while the policy is in it.
    const busy = await call("DELETE", `/v1/projects/${p.id}`, { token: api.bobToken });
    expect(expectError(busy, 409, "PROJECT_IN_USE").message).toContain(p.id);
    expect((await call("DELETE", `/v1/auth_policies/${id}`, { token: api.bobToken })).status).toBe(200);
    expectError(await call("GET", `/v1/auth_policies/${id}`, { token: api.bobToken }), 404, "AUTH_POLICY_NOT_FOUND");
    expect((await call("DELETE", `/v1/projects/${p.id}`, { token: api.bobToken })).status).toBe(200);
  });

  it("lets anyone read a policy by id, but only its owner or the administrator change it (403 otherwise)", async () => {
    const carol = (await api.service.createIdentity("carol@example.org")).token;
    const p = await project(api.bobToken);
    const id = (await policy(p.id, {}, api.bobToken)).body.id;
    expect((await call("GET", `/v1/auth_policies/${id}`, { token: carol })).status).toBe(200);
    const put = await call("PUT", `/v1/auth_policies/${id}`, { token: carol, body: { display_name: "mine now" } });
    expect(expectError(put, 403, "AUTH_POLICY_NOT_OWNED").message).toContain(id);
    expectError(await call("DELETE", `/v1/auth_policies/${id}`, { token: carol }), 403, "AUTH_POLICY_NOT_OWNED");
    expectError(await policy(p.id, {}, carol), 403, "PROJECT_NOT_OWNED");
    expectError(await call("DELETE", `/v1/projects/${p.id}`, { token: carol }), 403, "PROJECT_NOT_OWNED");
    // Carol's lists hold none of Bob's things; the administrator's hold everything.
    expect((await call<{ projects: unknown[] }>("GET", "/v1/projects", { token: carol })).body.projects).toEqual([]);
    expect((await call<{ policies: unknown[] }>("GET", "/v1/auth_policies", { token: carol })).body.policies).toEqual(
      [],
    );
    const all = await call<{ policies: AuthPolicyInfo[] }>("GET", "/v1/auth_policies");
    expect(all.body.policies.map((x) => x.id)).toContain(id);
    const byAdmin = await call<AuthPolicyInfo>("PUT", `/v1/auth_policies/${id}`, { body: { display_name: "admin's" } });
    expect(byAdmin.body.display_name).toBe("admin's");
  });

  it("refuses MFA on a policy that is not High-Assurance, and bad domain patterns, in one sentence", async () => {
    const p = await project(api.bobToken);
    const mfa = expectError(await policy(p.id, { required_mfa: true }, api.bobToken), 400, "AUTH_POLICY_INVALID");
    expect(mfa.message).toBe(
      "MFA may only be enabled for High Assurance(HA) policies; set high_assurance: true or leave required_mfa out.",
    );
    const bad = await policy(p.id, { domain_constraints_exclude: ["example .edu"] }, api.bobToken);
    expect(expectError(bad, 400, "AUTH_POLICY_INVALID").message).toMatch(
      /^domain_constraints_exclude entry "example \.edu" is not a domain pattern; .*\.$/,
    );
    const negative = await policy(p.id, { authentication_assurance_timeout: -1 }, api.bobToken);
    expectError(negative, 400, "INVALID_REQUEST");
    expectError(await policy("00000000-0000-4000-8000-000000000000", {}, api.bobToken), 404, "PROJECT_NOT_FOUND");
  });

  it("accepts a timeout under 60 seconds with a warning naming the 60-second lookup cache", async () => {
    const p = await project(api.bobToken);
    const r = await policy(p.id, { authentication_assurance_timeout: 30, high_assurance: true }, api.bobToken);
    expect(r.status).toBe(201);
    expect(r.body.warnings).toEqual([
      expect.stringMatching(/is 30 seconds, under the 60 seconds for which the service caches policy lookups/),
    ]);
  });

  it("makes subscriptions for the administrator only, readable by id by anyone", async () => {
    const refused = await call("POST", "/v1/subscriptions", { token: api.bobToken, body: { high_assurance: true } });
    expect(expectError(refused, 403, "ADMIN_ONLY").message).toContain("manage subscriptions");
    expectError(await call("GET", "/v1/subscriptions", { token: api.bobToken }), 403, "ADMIN_ONLY");
    const made = await call<SubscriptionInfo>("POST", "/v1/subscriptions", {
      body: { display_name: "HA lab", high_assurance: true },
    });
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({ display_name: "HA lab", high_assurance: true });
    const read = await call<SubscriptionInfo>("GET", `/v1/subscriptions/${made.body.id}`, { token: api.bobToken });
    expect(read.body).toEqual(made.body);
    const listed = await call<{ subscriptions: SubscriptionInfo[] }>("GET", "/v1/subscriptions");
    expect(listed.body.subscriptions.map((s) => s.id)).toContain(made.body.id);
  });

  it("registers an endpoint naming an existing policy and subscription, HA only when both are", async () => {
    const p = await project(api.bobToken);
    const plain = (await policy(p.id, {}, api.bobToken)).body.id;
    const ha = (await policy(p.id, { high_assurance: true }, api.bobToken)).body.id;
    const sub = (
      await call<SubscriptionInfo>("POST", "/v1/subscriptions", { body: { display_name: "HA", high_assurance: true } })
    ).body.id;
    const plainSub = (await call<SubscriptionInfo>("POST", "/v1/subscriptions", { body: { display_name: "plain" } }))
      .body.id;
    const register = (body: Record<string, unknown>) =>
      call("POST", "/v1/endpoints", { token: api.bobToken, body: { name: "ep", ...body } });
    const missing = "00000000-0000-4000-8000-000000000000";
    expect(
      expectError(await register({ authentication_policy: missing }), 404, "AUTH_POLICY_NOT_FOUND").message,
    ).toContain(missing);
    expectError(await register({ subscription_id: missing }), 404, "SUBSCRIPTION_NOT_FOUND");
    const notHa = await register({ authentication_policy: plain, subscription_id: sub, high_assurance: true });
    expect(expectError(notHa, 400, "NOT_HIGH_ASSURANCE").message).toBe(
      `High Assurance(HA) endpoints require both a HA policy and a HA subscription id, but policy ${plain} is not HA; name an HA policy (authentication_policy) and an HA subscription (subscription_id), or register without high_assurance.`,
    );
    const noSub = await register({ authentication_policy: ha, subscription_id: plainSub, high_assurance: true });
    expect(expectError(noSub, 400, "NOT_HIGH_ASSURANCE").message).toContain(`subscription ${plainSub} is not HA`);
    const ok = await register({
      authentication_policy: ha,
      subscription_id: sub,
      high_assurance: true,
      contact_email: "ops@example.edu",
    });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    const id = (ok.body as { endpoint_id: string }).endpoint_id;
    expect(await api.service.store.getEndpoint(id)).toMatchObject({
      authPolicyId: ha,
      subscriptionId: sub,
      contactEmail: "ops@example.edu",
    });
    // A policy an endpoint names cannot be deleted from under it.
    expectError(await call("DELETE", `/v1/auth_policies/${ha}`, { token: api.bobToken }), 409, "AUTH_POLICY_IN_USE");
  });
});
