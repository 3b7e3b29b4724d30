/**
 * An endpoint's authentication policy, judged by a service started in-process
 * whose clock the tests move (the `clock` option): the submitter's domain in
 * and out of the include and exclude patterns (with `*`), the age of its last
 * login against the timeout on submit, task status and batch status, the
 * 60-second lookup cache, and the 403 body with its authorization parameters.
 */
import type { ApiErrorBody, AuthPolicyInfo, ProjectInfo } from "@conduit/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { totpCode, totpStep } from "../src/auth/totp.js";
import type { RunningService } from "../src/index.js";
import {
  authorizeUrl,
  Browser,
  codeLogin,
  formAction,
  hiddenInputs,
  pkcePair,
  signIn,
  tokensForCodePage,
} from "./helpers/oidc-flows.js";
import { restHelpers, submitBody } from "./helpers/rest.js";
import { startTestService } from "./helpers/service.js";

describe("authentication policies judged on submit, task status and result fetch", () => {
  let now = Date.now();
  let service: RunningService;
  let dispose: () => Promise<void>;
  let projectId: string;
  const { call, expectError, registerEndpoint, registerFunction } = restHelpers(() => ({
    url: service.url,
    token: service.adminToken,
  }));

  beforeAll(async () => {
    const started = await startTestService({ clock: () => now });
    service = started.value;
    dispose = started.dispose;
    const project = await call<ProjectInfo>("POST", "/v1/projects", { body: { display_name: "Policies" } });
    projectId = project.body.id;
  }, 120_000);

  afterAll(async () => {
    await dispose?.();
  });

  async function policy(body: Record<string, unknown>): Promise<AuthPolicyInfo> {
    const r = await call<AuthPolicyInfo>("POST", "/v1/auth_policies", {
      body: { project_id: projectId, display_name: "Test policy", ...body },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body;
  }

  /** An endpoint of `token`'s identity naming the policy, a function, and a submit of one task to it. */
  async function guarded(token: string, policyId: string) {
    const endpointId = await registerEndpoint({ authentication_policy: policyId }, token);
    const functionId = await registerFunction(undefined, token);
    const submit = () =>
      call<{ task_ids: string[] } & ApiErrorBody>("POST", `/v1/endpoints/${endpointId}/submit`, {
        token,
        body: submitBody(functionId),
      });
    return { endpointId, submit };
  }

  it("admits a domain matching an include pattern and refuses another with the 403 body naming the constraint", async () => {
    const p = await policy({ domain_constraints_include: ["*.edu"] });
    const alice = (await service.createIdentity("alice@physics.example.edu")).token;
    const bob = (await service.createIdentity("bob@example.org")).token;
    expect((await (await guarded(alice, p.id)).submit()).status).toBe(200);
    const refused = await (await guarded(bob, p.id)).submit();
    const message = `Authentication policy "Test policy" (${p.id}) admits only identities of *.edu, and bob@example.org is of example.org; log in with an identity of one of those domains.`;
    expect(refused.status).toBe(403);
    expect(refused.body).toEqual({
      statusCode: 403,
      code: "AUTH_POLICY_UNMET",
      error: "Forbidden",
      message,
      authorization_parameters: {
        session_message: message,
        session_required_policies: [p.id],
        session_required_single_domain: ["*.edu"],
        session_required_mfa: false,
      },
    });
  });

  it("refuses a domain matching an exclude pattern even when it matches an include one", async () => {
    const p = await policy({
      domain_constraints_include: ["example.edu", "*.example.edu"],
      domain_constraints_exclude: ["guest.*"],
    });
    const guest = (await service.createIdentity("carol@guest.example.edu")).token;
    const staff = (await service.createIdentity("dave@example.edu")).token;
    expect((await (await guarded(staff, p.id)).submit()).status).toBe(200);
    const refused = await (await guarded(guest, p.id)).submit();
    expect(expectError(refused, 403, "AUTH_POLICY_UNMET").message).toBe(
      `Authentication policy "Test policy" (${p.id}) excludes identities of guest.*, and carol@guest.example.edu is of guest.example.edu; log in with an identity of another domain.`,
    );
  });

  it("refuses, once the last login is older than the timeout, submits, task status and batch status until a new login", async () => {
    const p = await policy({ authentication_assurance_timeout: 120 });
    await call("POST", "/v1/admin/identities", {
      body: { username: "erin@example.edu", password: "erin's long password" },
    });
    const login = () => codeLogin(service.url, "erin@example.edu", "erin's long password");
    const token = (await login()).access_token;
    const { submit } = await guarded(token, p.id);
    const first = await submit();
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    const taskId = first.body.task_ids[0];
    expect((await call("GET", `/v1/tasks/${taskId}`, { token })).status).toBe(200);

    now += 181_000;
    const refused = expectError(await submit(), 403, "AUTH_POLICY_UNMET");
    expect(refused.message).toBe(
      `Authentication policy "Test policy" (${p.id}) needs a login within the last 120 seconds, and erin@example.edu last logged in 181 seconds ago; log in again.`,
    );
    expectError(await call("GET", `/v1/tasks/${taskId}`, { token }), 403, "AUTH_POLICY_UNMET");
    const batch = await call("POST", "/v1/tasks/batch_status", { token, body: { task_ids: [taskId] } });
    expectError(batch, 403, "AUTH_POLICY_UNMET");

    // A new login counts at once (an unmet verdict is never cached), and so does its token.
    const fresh = (await login()).access_token;
    expect((await call("GET", `/v1/tasks/${taskId}`, { token: fresh })).status).toBe(200);
    expect((await submit()).status).toBe(200);
  });

  it("reuses a met verdict for the 60-second lookup cache, so a timeout under a minute is late by up to that", async () => {
    const p = await policy({ authentication_assurance_timeout: 30 });
    await call("POST", "/v1/admin/identities", {
      body: { username: "finn@example.edu", password: "finn's long password" },
    });
    const token = (await codeLogin(service.url, "finn@example.edu", "finn's long password")).access_token;
    const { submit } = await guarded(token, p.id);
    expect((await submit()).status).toBe(200);
    now += 45_000;
    expect((await submit()).status).toBe(200);
    now += 16_000;
    expect(expectError(await submit(), 403, "AUTH_POLICY_UNMET").message).toContain("last logged in 61 seconds ago");
  });

  it("refuses an identity that never logged in (an API token) when the policy has a timeout", async () => {
    const p = await policy({ authentication_assurance_timeout: 3600 });
    const gus = (await service.createIdentity("gus@example.edu")).token;
    const refused = await (await guarded(gus, p.id)).submit();
    expect(expectError(refused, 403, "AUTH_POLICY_UNMET").message).toBe(
      `Authentication policy "Test policy" (${p.id}) needs a recent login, and gus@example.edu has no recorded login (an API token is not one); log in again.`,
    );
  });

  it("lets an endpoint without a policy through, and sees a policy change at once on this replica", async () => {
    const p = await policy({ domain_constraints_include: ["example.edu"] });
    const hal = (await service.createIdentity("hal@example.edu")).token;
    const { submit } = await guarded(hal, p.id);
    expect((await submit()).status).toBe(200);
    const put = await call("PUT", `/v1/auth_policies/${p.id}`, {
      body: { display_name: "Test policy", domain_constraints_exclude: ["example.edu"] },
    });
    expect(put.status).toBe(200);
    expectError(await submit(), 403, "AUTH_POLICY_UNMET");
    const open = await registerEndpoint({}, hal);
    const fn = await registerFunction(undefined, hal);
    const r = await call("POST", `/v1/endpoints/${open}/submit`, { token: hal, body: submitBody(fn) });
    expect(r.status).toBe(200);
  });
});

describe("required_mfa: a one-time code (TOTP) at the login", () => {
  let now = Date.now();
  let service: RunningService;
  let dispose: () => Promise<void>;
  const { call, expectError, registerEndpoint, registerFunction } = restHelpers(() => ({
    url: service.url,
    token: service.adminToken,
  }));
  const PASSWORD = "ivy's long password";

  beforeAll(async () => {
    const started = await startTestService({ clock: () => now });
    service = started.value;
    dispose = started.dispose;
  }, 120_000);

  afterAll(async () => {
    await dispose?.();
  });

  /** The link-and-code login with a one-time code after the password; returns the access token. */
  async function loginWithCode(username: string, code: () => string): Promise<string> {
    const browser = new Browser(service.url);
    const { verifier, challenge } = pkcePair();
    const asked = await signIn(browser, authorizeUrl(service.url, challenge), username, PASSWORD);
    expect(asked.status, asked.text).toBe(200);
    expect(asked.text).toContain('name="otp"');
    const posted = await browser.request(formAction(asked.text), { form: { otp: code() } });
    expect(posted.status, posted.text).toBe(303);
    const landed = await browser.follow(posted.location ?? "", posted);
    return (await tokensForCodePage(service.url, landed.text, verifier)).access_token;
  }

  it("refuses a password-only login, and admits one with a code enrolled on the login page", async () => {
    const project = await call<ProjectInfo>("POST", "/v1/projects", { body: { display_name: "MFA" } });
    const p = await call<AuthPolicyInfo>("POST", "/v1/auth_policies", {
      body: { project_id: project.body.id, display_name: "MFA", high_assurance: true, required_mfa: true },
    });
    await call("POST", "/v1/admin/identities", { body: { username: "ivy@example.edu", password: PASSWORD } });
    const plain = (await codeLogin(service.url, "ivy@example.edu", PASSWORD)).access_token;
    const endpointId = await registerEndpoint({ authentication_policy: p.body.id }, plain);
    const functionId = await registerFunction(undefined, plain);
    const submit = (token: string) =>
      call("POST", `/v1/endpoints/${endpointId}/submit`, { token, body: submitBody(functionId) });
    const refused = expectError(await submit(plain), 403, "AUTH_POLICY_UNMET");
    expect(refused.message).toBe(
      `Authentication policy "MFA" (${p.body.id}) needs a login with a second factor (MFA), and the last login of ivy@example.edu had none; log in again with your one-time code.`,
    );
    expect((refused as ApiErrorBody).authorization_parameters?.session_required_mfa).toBe(true);

    // Enrolment: password, then the secret shown, then its first code.
    const browser = new Browser(service.url);
    const form = await browser.request("/login/totp");
    expect(form.text).toContain('action="/login/totp"');
    const shown = await browser.request("/login/totp", { form: { username: "ivy@example.edu", password: PASSWORD } });
    expect(shown.status, shown.text).toBe(200);
    const secret = /<code class="big" id="secret">([A-Z2-7]+)<\/code>/.exec(shown.text)?.[1] ?? "";
    expect(shown.text).toContain(`otpauth://totp/Conduit%3Aivy%40example.edu?secret=${secret}&amp;issuer=Conduit`);
    const wrong = await browser.request("/login/totp/confirm", {
      form: { ...hiddenInputs(shown.text), otp: "000000" === totpCode(secret, totpStep(now)) ? "111111" : "000000" },
    });
    expect(wrong.status).toBe(401);
    const on = await browser.request("/login/totp/confirm", {
      form: { ...hiddenInputs(shown.text), otp: totpCode(secret, totpStep(now)) },
    });
    expect(on.status, on.text).toBe(200);
    expect(on.text).toContain("Two-factor sign-in is on");

    // The next step's code (the enrolment used this one), accepted as the clock's next step.
    now += 30_000;
    const token = await loginWithCode("ivy@example.edu", () => totpCode(secret, totpStep(now)));
    expect((await submit(token)).status).toBe(200);
    const last = await service.authStore.lastLogin((await service.store.findIdentityByUsername("ivy@example.edu"))!.id);
    expect(last).toMatchObject({ method: "password+totp", amr: ["pwd", "otp", "mfa"] });

    // A code works once: the same step's code again is refused.
    const browser2 = new Browser(service.url);
    const { challenge } = pkcePair();
    const asked = await signIn(browser2, authorizeUrl(service.url, challenge), "ivy@example.edu", PASSWORD);
    const reused = await browser2.request(formAction(asked.text), { form: { otp: totpCode(secret, totpStep(now)) } });
    expect(reused.status).toBe(401);
    expect(reused.text).toContain("That code is wrong or was used already");
  });

  it("enrols a code through the administrator's route (403 for anyone else), and the login then asks for it", async () => {
    await call("POST", "/v1/admin/identities", { body: { username: "jo@example.edu", password: PASSWORD } });
    const r = await call<{ secret: string; otpauth_uri: string }>("POST", "/v1/admin/identities/jo@example.edu/totp");
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const bob = (await service.createIdentity("bob@example.org")).token;
    expectError(await call("POST", "/v1/admin/identities/jo@example.edu/totp", { token: bob }), 403, "ADMIN_ONLY");
    await loginWithCode("jo@example.edu", () => totpCode(r.body.secret, totpStep(now)));
    const last = await service.authStore.lastLogin((await service.store.findIdentityByUsername("jo@example.edu"))!.id);
    expect(last?.amr).toEqual(["pwd", "otp", "mfa"]);
  });
});
