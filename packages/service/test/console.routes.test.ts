/**
 * The web console's pages over plain HTTP, in-process on both stores: the
 * security headers and cookies, CSRF, what each user may see (as the REST
 * API decides), filters, a task's timings and escaped error, the live
 * figures' stream; the forms for projects, policies and subscriptions. Chromium drives the whole thing in test/e2e/console.e2e.test.ts.
 */
import { describe, expect, it } from "vitest";
import { useApiService } from "./helpers/api-suite.js";
import { submitBody } from "./helpers/rest.js";
import { TEST_STORES } from "./helpers/service.js";

const HOSTILE = "<script>alert(1)</script>";

/** A browser's cookie jar, as far as the console needs one. */
class Session {
  private readonly cookies = new Map<string, string>();
  constructor(private readonly base: () => string) {}

  async request(method: string, path: string, form?: Record<string, string>) {
    const headers: Record<string, string> = {};
    if (this.cookies.size > 0) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    if (form) headers["content-type"] = "application/x-www-form-urlencoded";
    const response = await fetch(`${this.base()}${path}`, {
      method,
      headers,
      body: form ? new URLSearchParams(form).toString() : undefined,
      redirect: "manual",
    });
    for (const cookie of response.headers.getSetCookie()) {
      const [pair] = cookie.split(";");
      const [name, value] = pair.split("=");
      if (/Max-Age=0/.test(cookie)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    const stream = response.headers.get("content-type")?.startsWith("text/event-stream");
    if (stream) throw new Error(`${path} answered a stream; read it with fetch.`);
    return { response, text: await response.text() };
  }

  get(path: string) {
    return this.request("GET", path);
  }

  /** The CSRF token of the page at `path` (every signed-in page has the sign-out form). */
  async csrf(path: string): Promise<string> {
    return /name="csrf" value="([^"]+)"/.exec((await this.get(path)).text)?.[1] ?? "";
  }

  async signIn(token: string): Promise<Response> {
    const { text } = await this.get("/console/sign-in");
    const csrf = /name="csrf" value="([^"]+)"/.exec(text)?.[1] ?? "";
    return (await this.request("POST", "/console/sign-in", { csrf, token })).response;
  }

  set(name: string, value: string): void {
    this.cookies.set(name, value);
  }

  value(name: string): string | undefined {
    return this.cookies.get(name);
  }
}

describe.each(TEST_STORES)("web console pages on $name", ({ store }) => {
  const api = useApiService(store);
  const { call, registerEndpoint, registerFunction } = api;
  const base = () => api.service.url;

  it("sends strangers to sign in, with a strict CSP and cookies JavaScript cannot read", async () => {
    const root = await fetch(`${base()}/`, { redirect: "manual" });
    expect(root.status).toBe(302);
    expect(root.headers.get("location")).toBe("/console/");
    const browser = new Session(base);
    const { response } = await browser.get("/console/");
    expect(response.status).toBe(303);
    expect(response.headers.get("location")).toBe("/console/sign-in");
    const csp = response.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain("unsafe");

    const refused = await browser.signIn("not-a-token");
    expect(refused.status).toBe(401);
    const signedIn = await browser.signIn(api.token);
    expect(signedIn.status).toBe(303);
    const cookie = signedIn.headers.getSetCookie().find((c) => c.startsWith("conduit_console="));
    expect(cookie).toMatch(/; HttpOnly; SameSite=Strict$/);
    expect(cookie).not.toContain(api.token);

    // A cookie altered by one character is no session.
    const sealed = browser.value("conduit_console") ?? "";
    const forged = new Session(base);
    forged.set("conduit_console", `${sealed.slice(0, -2)}${sealed.endsWith("A") ? "B" : "A"}${sealed.slice(-1)}`);
    expect((await forged.get("/console/")).response.status).toBe(303);

    // Signing out needs the form's CSRF token.
    expect((await browser.request("POST", "/console/sign-out", { csrf: "wrong" })).response.status).toBe(403);
    const { text } = await browser.get("/console/");
    const csrf = /name="csrf" value="([^"]+)"/.exec(text)?.[1] ?? "";
    expect((await browser.request("POST", "/console/sign-out", { csrf })).response.status).toBe(303);
    expect((await browser.get("/console/")).response.status).toBe(303);
  });

  it("shows an endpoint's tasks with filters, a task's timings and its error as text, and live figures", async () => {
    const endpointId = await registerEndpoint({ name: "console-lab", display_name: `Lab ${HOSTILE}` });
    const functionId = await registerFunction();
    const submitted = await call<{ task_ids: string[]; task_group_id: string; uep_id: string }>(
      "POST",
      `/v1/endpoints/${endpointId}/submit`,
      { body: submitBody(functionId, 3) },
    );
    expect(submitted.status).toBe(200);
    const [failedId, doneId] = submitted.body.task_ids;
    const sender = { sender: "console-test", sharedAccount: true };
    const { store: db } = api.service;
    const engine = { type: "HighThroughputEngine", totalWorkers: 4, idleWorkers: 2, pendingTasks: 0, blocks: 1 };
    expect(await db.recordUepHeartbeat(endpointId, submitted.body.uep_id, undefined, engine)).toBe(true);
    await db.markTasksRunning([failedId, doneId].map((taskId) => ({ taskId, endpointId, ...sender })));
    await db.storeResults([
      {
        taskId: failedId,
        endpointId,
        ...sender,
        state: "failed",
        error: { code: "TASK_EXCEPTION", name: "Error", message: HOSTILE, stack: `Error: ${HOSTILE}\n    at f` },
        completedAt: Date.now(),
      },
      {
        taskId: doneId,
        endpointId,
        ...sender,
        state: "success",
        result: { strategy: "conduit.json", data: "4" },
        completedAt: Date.now(),
      },
    ]);

    const browser = new Session(base);
    await browser.signIn(api.token);
    const list = await browser.get("/console/");
    expect(list.text).toContain(`Lab &lt;script&gt;alert(1)&lt;/script&gt;`);
    expect(list.text).not.toContain(HOSTILE);

    const page = await browser.get(`/console/endpoints/${endpointId}`);
    expect(page.response.status).toBe(200);
    expect(page.text.match(/<tr data-task=/g)).toHaveLength(3);
    expect(page.text).toContain(`<tr><td><code>${submitted.body.uep_id}</code></td><td>admin@localhost</td>`);
    expect(page.text).toContain('<td>HighThroughputEngine</td><td class="workers">2 of 4</td>\n<td>1</td><td>1</td>');
    const failed = await browser.get(`/console/endpoints/${endpointId}?state=failed`);
    expect(failed.text.match(/<tr data-task="([^"]+)"/g)).toEqual([`<tr data-task="${failedId}"`]);
    const byGroup = await browser.get(
      `/console/endpoints/${endpointId}?function=${functionId}&group=${submitted.body.task_group_id}`,
    );
    expect(byGroup.text.match(/<tr data-task=/g)).toHaveLength(3);
    const badState = await browser.get(`/console/endpoints/${endpointId}?state=done`);
    expect(badState.response.status).toBe(400);
    expect(badState.text).toContain("State done is not a task state; choose one of received, waiting-for-endpoint");
    const badGroup = await browser.get(`/console/endpoints/${endpointId}?group=abc`);
    expect(badGroup.response.status).toBe(400);
    expect(badGroup.text).toContain("The group filter abc is not a UUID");

    const task = await browser.get(`/console/tasks/${failedId}`);
    expect(task.text).toContain('<dd class="error-message">&lt;script&gt;alert(1)&lt;/script&gt;</dd>');
    expect(task.text).toContain("Error: &lt;script&gt;alert(1)&lt;/script&gt;\n    at f</pre>");
    expect(task.text.match(/<script/g)).toHaveLength(1);
    for (const state of ["received", "waiting-for-endpoint", "running", "failed"]) {
      expect(task.text).toContain(`<tr><td>${state}</td>`);
    }
    const group = await browser.get(`/console/task-groups/${submitted.body.task_group_id}`);
    expect(group.text).toContain("failed: 1");
    expect((await browser.get("/console/functions")).text).toContain(functionId);

    // The first point of the live stream: two finished in the window, one still queued.
    const live = await fetch(`${base()}/console/endpoints/${endpointId}/live`, {
      headers: { cookie: `conduit_console=${browser.value("conduit_console")}` },
    });
    expect(live.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const reader = live.body!.getReader();
    let text = "";
    while (!text.includes("\n\n")) text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    const point = JSON.parse(text.slice(text.indexOf("data: ") + 6, text.indexOf("\n\n")));
    expect(point).toMatchObject({ throughput: 0.2, queued: 1, running: 0 });
    expect(point.p50).toBeGreaterThanOrEqual(0);
  });

  it("shows another user only what the API would: a multi-user endpoint but not the owner's UEPs or tasks", async () => {
    const privateId = await registerEndpoint({ name: "private" });
    const sharedId = await registerEndpoint({ name: "shared", multi_user: true });
    const functionId = await registerFunction();
    const submitted = await call<{ task_ids: string[]; task_group_id: string }>(
      "POST",
      `/v1/endpoints/${sharedId}/submit`,
      { body: submitBody(functionId, 1) },
    );
    expect(submitted.status).toBe(200);

    const bob = new Session(base);
    expect((await bob.signIn(api.bobToken)).status).toBe(303);
    const list = await bob.get("/console/");
    expect(list.text).not.toContain(privateId);
    for (const path of [
      `/console/endpoints/${privateId}`,
      `/console/endpoints/${privateId}/live`,
      `/console/tasks/${submitted.body.task_ids[0]}`,
      `/console/task-groups/${submitted.body.task_group_id}`,
    ]) {
      const { response, text } = await bob.get(path);
      expect(response.status, path).toBe(404);
      expect(text, path).toContain("does not exist, or is not yours to see.");
    }
    const shared = await bob.get(`/console/endpoints/${sharedId}`);
    expect(shared.response.status).toBe(200);
    expect(shared.text).toContain("No user endpoint has started here yet.");
    expect(shared.text).toContain("No tasks match.");
    expect((await bob.get("/console/functions")).text).not.toContain(functionId);
  });

  it("creates projects and policies through forms with a CSRF token, and shows them only to their owner and the administrator", async () => {
    const bob = new Session(base);
    expect((await bob.signIn(api.bobToken)).status).toBe(303);
    expect((await bob.get("/console/projects")).text).toContain("You have no projects yet");
    const csrf = await bob.csrf("/console/projects");
    const project = { display_name: `Lab ${HOSTILE}`, description: "Bob's lab" };

    const forged = await bob.request("POST", "/console/projects", project);
    expect(forged.response.status).toBe(403);
    expect(forged.text).toContain("The form expired; reload the page and send it again.");
    expect((await bob.request("POST", "/console/projects", { ...project, csrf: "wrong" })).response.status).toBe(403);
    expect((await bob.get("/console/projects")).text).toContain("You have no projects yet");

    const made = await bob.request("POST", "/console/projects", { ...project, csrf });
    expect(made.response.status).toBe(303);
    expect(made.response.headers.get("location")).toBe("/console/projects");
    const projects = await bob.get("/console/projects");
    expect(projects.text).toContain("<td>Lab &lt;script&gt;alert(1)&lt;/script&gt;</td>");
    const projectId = /data-project="([^"]+)"/.exec(projects.text)?.[1] ?? "";
    expect(projectId).toMatch(/^[0-9a-f-]{36}$/);

    const policy = {
      csrf,
      project_id: projectId,
      display_name: "Campus only",
      domain_constraints_include: "*.example.org, example.edu",
      domain_constraints_exclude: "guest.example.org",
      authentication_assurance_timeout: "30",
      high_assurance: "on",
      required_mfa: "on",
    };
    expect((await bob.request("POST", "/console/policies", { ...policy, csrf: "" })).response.status).toBe(403);
    const badTimeout = await bob.request("POST", "/console/policies", {
      ...policy,
      authentication_assurance_timeout: "soon",
    });
    expect(badTimeout.response.status).toBe(400);
    expect(badTimeout.text).toContain("The login timeout soon is not a whole number of seconds");
    const { high_assurance: _, ...notHa } = policy;
    const mfaWithoutHa = await bob.request("POST", "/console/policies", notHa);
    expect(mfaWithoutHa.response.status).toBe(400);
    expect(mfaWithoutHa.text).toContain("MFA may only be enabled for High Assurance(HA) policies");
    expect((await bob.get("/console/policies")).text).toContain("You have no authentication policies yet.");

    const created = await bob.request("POST", "/console/policies", policy);
    expect(created.response.status).toBe(303);
    const policyPath = created.response.headers.get("location") ?? "";
    const policyId = policyPath.split("/").at(-1) ?? "";
    expect(policyPath).toMatch(/^\/console\/policies\/[0-9a-f-]{36}$/);
    const detail = await bob.get(policyPath);
    expect(detail.response.status).toBe(200);
    expect(detail.text).toContain('<dd class="domain-include">*.example.org, example.edu</dd>');
    expect(detail.text).toContain('<dd class="domain-exclude">guest.example.org</dd>');
    expect(detail.text).toContain('<dd class="high-assurance">yes</dd>');
    expect(detail.text).toContain('<dd class="timeout">30 s</dd>');
    expect(detail.text).toContain('<dd class="mfa">yes</dd>');
    expect(detail.text).toContain("under the 60 seconds for which the service caches policy lookups");
    expect((await bob.get("/console/policies")).text).toContain(`data-policy="${policyId}"`);
    // The REST API sees what the form made.
    const rest = await fetch(`${base()}/v1/auth_policies/${policyId}`, {
      headers: { authorization: `Bearer ${api.bobToken}` },
    });
    expect(await rest.json()).toMatchObject({ project_id: projectId, required_mfa: true, high_assurance: true });

    // Another user sees neither, and cannot add a policy to Bob's project.
    const carolToken = (await api.service.createIdentity("carol@example.org", { name: "Carol" })).token;
    const carol = new Session(base);
    expect((await carol.signIn(carolToken)).status).toBe(303);
    expect((await carol.get("/console/projects")).text).not.toContain(projectId);
    expect((await carol.get("/console/policies")).text).not.toContain(policyId);
    const hidden = await carol.get(policyPath);
    expect(hidden.response.status).toBe(404);
    expect(hidden.text).toContain(`Authentication policy ${policyId} does not exist, or is not yours to see.`);
    const intruding = await carol.request("POST", "/console/policies", {
      ...policy,
      csrf: await carol.csrf("/console/policies"),
    });
    expect(intruding.response.status).toBe(403);
    expect(intruding.text).toContain(`Project ${projectId} belongs to another identity`);
    const carolPolicies = (await carol.get("/console/policies")).text;
    expect(carolPolicies).toContain("create a project</a> first");
    expect(carolPolicies).not.toContain('href="/console/subscriptions"');

    // Subscriptions are the administrator's.
    const carolCsrf = await carol.csrf("/console/projects");
    const notGranted = await carol.request("POST", "/console/subscriptions", { csrf: carolCsrf, display_name: "mine" });
    expect(notGranted.response.status).toBe(403);
    expect(notGranted.text).toContain("Only the local administrator (admin@localhost) may manage subscriptions");
    const refusedPage = await carol.get("/console/subscriptions");
    expect(refusedPage.response.status).toBe(403);
    expect(refusedPage.text).toContain("Only the local administrator (admin@localhost) may manage subscriptions");
    expect(refusedPage.text).not.toContain('href="/console/subscriptions"');

    const admin = new Session(base);
    await admin.signIn(api.token);
    expect((await admin.get("/console/policies")).text).toContain(`data-policy="${policyId}"`);
    expect((await admin.get(policyPath)).response.status).toBe(200);
    const adminCsrf = await admin.csrf("/console/subscriptions");
    expect((await admin.request("POST", "/console/subscriptions", { display_name: "HA grant" })).response.status).toBe(
      403,
    );
    const granted = await admin.request("POST", "/console/subscriptions", {
      csrf: adminCsrf,
      display_name: "HA grant",
      high_assurance: "on",
    });
    expect(granted.response.status).toBe(303);
    const subscriptions = await admin.get("/console/subscriptions");
    expect(subscriptions.text).toMatch(/<tr data-subscription="[0-9a-f-]{36}"><td>HA grant<\/td><td>yes<\/td>/);
    expect(subscriptions.text).toContain('href="/console/subscriptions"');
  });
});
