/**
 * `configure`'s authentication policy and High-Assurance options, config.yaml's
 * keys for them, the registration and the HA engine rule, through the built
 * CLI against the real service (in process, PGlite, a vhost of its own): the
 * projects and policies configure makes are read back over REST, and an
 * endpoint's policy is seen in force by a submit it refuses.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { JSON_DATA, SOURCE_CODE } from "@conduit/protocol";
import { AuthPolicyUnmetError, Client } from "@conduit/sdk";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { createHighAssuranceKeys } from "../../../scripts/local-stack.mjs";
import { HA_ENGINE_REFUSAL } from "../dist/engines/high-assurance.js";
import { parseManagerConfig } from "../src/config/manager-config.js";
import { CLI, cliEnv, runCli, startMep, tempUserDir, useTestService } from "./cli.helpers.js";
import { inPty, killPtys } from "./pty.helpers.js";

const POLICY = "498c6a5c-0a3d-4ab6-8a9b-6bcfb9f8a6bd";
const SUBSCRIPTION = "2c94f030-d346-11e9-939f-02ff96a5aa76";
const HA_MESSAGE = "High Assurance(HA) endpoints require both a HA policy and a HA subscription id";

const context = useTestService();
let userDir: string;
let env: NodeJS.ProcessEnv;
let userToken: string;
let counter = 0;
let users = 0;

/** A REST call to the service; the administrator's unless `token` is given. Throws on an error answer. */
async function rest<T>(method: string, path: string, body?: unknown, token = context.service.token): Promise<T> {
  const response = await fetch(`${context.service.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

/** A new identity of the service, with its API token. */
async function newUser(): Promise<{ username: string; token: string }> {
  const username = `ops${users++}@example.org`;
  const { token } = await rest<{ token: string }>("POST", "/v1/admin/identities", { username });
  return { username, token };
}

interface Policy {
  id: string;
  project_id: string;
  [field: string]: unknown;
}
/**
 * Starts `name`'s MEP as the user: its endpoint's high_assurance as the
 * service registered it, the user's client, and a task of a function it
 * registered, ready to submit.
 */
async function startWithTask(name: string) {
  const mep = await startMep(name, env);
  const endpoint = await rest<{ high_assurance: boolean }>(
    "GET",
    `/v1/endpoints/${mep.endpointId}`,
    undefined,
    userToken,
  );
  const client = new Client({ serviceUrl: context.service.url, token: userToken, retries: 0 });
  const functionId = await client.registerFunction({ strategy: SOURCE_CODE, data: "(x) => x" });
  const task = { task_id: crypto.randomUUID(), function_id: functionId, args: { strategy: JSON_DATA, data: "[1]" } };
  return { mep, highAssurance: endpoint.high_assurance, client, task };
}

const policiesOf = async (token = userToken) =>
  (await rest<{ policies: Policy[] }>("GET", "/v1/auth_policies", undefined, token)).policies;
const projectsOf = async (token = userToken) =>
  (
    await rest<{ projects: Array<{ id: string; display_name: string; contact_email: string | null }> }>(
      "GET",
      "/v1/projects",
      undefined,
      token,
    )
  ).projects;
/** What the service holds for the user: a refused configure must leave it as it was. */
const serviceState = async () => JSON.stringify([await projectsOf(), await policiesOf()]);
const newProject = (display_name: string, token = userToken) =>
  rest<{ id: string }>("POST", "/v1/projects", { display_name }, token);
/** A policy or subscription of the administrator's, HA or not. */
async function adminPolicy(highAssurance: boolean): Promise<string> {
  const project = await newProject("Admin's", context.service.token);
  const body = { project_id: project.id, display_name: "P", high_assurance: highAssurance };
  return (await rest<{ id: string }>("POST", "/v1/auth_policies", body)).id;
}
const subscription = async (highAssurance: boolean) =>
  (await rest<{ id: string }>("POST", "/v1/subscriptions", { display_name: "S", high_assurance: highAssurance })).id;

beforeAll(async () => {
  userDir = tempUserDir();
  userToken = (await newUser()).token;
  env = cliEnv(userDir, { url: context.service.url, token: userToken });
});
afterEach(killPtys);

const fresh = () => `ep${counter++}`;
const configYaml = (name: string) => readFileSync(join(userDir, name, "config.yaml"), "utf8");
const parsed = (name: string) => parseManagerConfig(configYaml(name), "config.yaml");

/** Runs a configure that must be refused: exit 1, one line, nothing written, nothing asked of the service. */
async function refused(args: string[], sentence: string): Promise<void> {
  const name = fresh();
  const before = await serviceState();
  const result = await runCli(["configure", name, ...args], env);
  expect(result.stderr).toContain(sentence);
  expect(result.stderr.startsWith("Error: ")).toBe(true);
  expect(result.stderr.trim().split("\n")).toHaveLength(1);
  expect(result.code).toBe(1);
  expect(existsSync(join(userDir, name))).toBe(false);
  expect(await serviceState()).toBe(before);
}

describe("configure refuses upstream's contradictions before asking the service", () => {
  it.each([
    [
      "a policy id with creation options",
      ["--auth-policy", POLICY, "--allowed-domains", "example.edu"],
      "Cannot specify an existing auth policy and create a new one at the same time; drop --auth-policy, or drop --allowed-domains.",
    ],
    ["HA without a subscription", ["--high-assurance", "--auth-policy", POLICY], HA_MESSAGE],
    ["HA without a policy", ["--high-assurance", "--subscription-id", SUBSCRIPTION], HA_MESSAGE],
    ["MFA without creation", ["--auth-policy-mfa-required"], "MFA may only be specified when creating a policy"],
    [
      "MFA with an existing policy",
      ["--auth-policy", POLICY, "--auth-policy-mfa-required"],
      "MFA may only be specified when creating a policy",
    ],
    [
      "MFA without HA",
      ["--auth-policy-project-id", POLICY, "--auth-policy-mfa-required"],
      "MFA may only be enabled for High Assurance(HA) policies",
    ],
    [
      "a policy id that is no UUID",
      ["--auth-policy", "my-policy"],
      "--auth-policy must be an authentication policy id",
    ],
    [
      "a bad timeout",
      ["--auth-policy-project-id", POLICY, "--auth-timeout", "1h"],
      "--auth-timeout must be a whole number",
    ],
    ["a bad email", ["--contact-email", "admin"], "--contact-email must be an email address"],
  ])("%s", async (_what, args, sentence) => {
    await refused(args, sentence);
  });

  it("creating a policy without a project and without a terminal names the option, before any policy exists", async () => {
    const name = fresh();
    const before = await serviceState();
    const result = await runCli(["configure", name, "--allowed-domains", "example.edu"], env);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("pass --auth-policy-project-id with one of your projects' ids.");
    expect(existsSync(join(userDir, name))).toBe(false);
    expect(await serviceState()).toBe(before);
  });
});

describe("configure writes the keys into config.yaml", () => {
  it("--auth-policy, --subscription-id and --contact-email need no service, and start's checks accept them", async () => {
    const name = fresh();
    const before = await serviceState();
    const args = [
      "--auth-policy",
      POLICY.toUpperCase(),
      "--subscription-id",
      SUBSCRIPTION,
      "--contact-email",
      "ops@example.org",
    ];
    const result = await runCli(["configure", name, ...args], env);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(await serviceState()).toBe(before);
    expect(configYaml(name)).toContain(`authentication_policy: ${POLICY}\n`);
    expect(parsed(name)).toMatchObject({
      authentication_policy: POLICY,
      subscription_id: SUBSCRIPTION,
      contact_email: "ops@example.org",
      high_assurance: false,
      audit_log_path: null,
    });
  });

  it("--high-assurance checks that the policy and the subscription are HA, then writes high_assurance and audit_log_path", async () => {
    const keys = await createHighAssuranceKeys(context.service.url, context.service.token);
    const policy = keys.authentication_policy;
    const subscription = keys.subscription_id;
    const name = fresh();
    const result = await runCli(
      ["configure", name, "--high-assurance", "--auth-policy", policy, "--subscription-id", subscription],
      env,
    );
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(parsed(name)).toMatchObject({
      high_assurance: true,
      audit_log_path: join(userDir, name, "audit.log"),
      authentication_policy: policy,
      subscription_id: subscription,
    });
    // The default template's HighThroughputEngine encrypts (TLS) by default, so it is HA-compliant as written.
    const rendered = await runCli(["render", name], env);
    expect(rendered.stderr).toBe("");
    expect(rendered.stdout).toContain("type: GlobusComputeEngine");
  });

  it.each([
    ["policy", { policyHa: false, subscriptionHa: true }, "authentication policy"],
    ["subscription", { policyHa: true, subscriptionHa: false }, "subscription"],
  ])("--high-assurance refuses a %s that is not HA", async (_what, ha, named) => {
    const policy = await adminPolicy(ha.policyHa);
    const subscriptionId = await subscription(ha.subscriptionHa);
    const name = fresh();
    const result = await runCli(
      ["configure", name, "--high-assurance", "--auth-policy", policy, "--subscription-id", subscriptionId],
      env,
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${HA_MESSAGE}, and ${named} `);
    expect(result.stderr).toContain("is not High-Assurance");
    expect(existsSync(join(userDir, name))).toBe(false);
  });

  it("creates a policy in the given project with the options' constraints, prints the service's warnings and writes its id", async () => {
    const project = await newProject("Lab");
    const subscriptionId = await subscription(true);
    const name = fresh();
    const result = await runCli(
      [
        "configure",
        name,
        "--high-assurance",
        "--subscription-id",
        subscriptionId,
        "--auth-policy-project-id",
        project.id,
        "--allowed-domains",
        "example.edu,*.example.edu",
        "--excluded-domains",
        "bad.example.edu",
        "--auth-timeout",
        "30",
        "--auth-policy-mfa-required",
      ],
      env,
    );
    expect(result.code).toBe(0);
    expect(result.stderr).toBe(
      "Warning: authentication_assurance_timeout is 30 seconds, under the 60 seconds for which the service caches policy lookups, so a login may pass for up to 60 seconds longer; use 60 or more.\n",
    );
    const created = (await policiesOf()).find((p) => p.project_id === project.id);
    expect(created).toMatchObject({
      project_id: project.id,
      display_name: "Conduit Authentication Policy",
      description: "This policy was created automatically by Conduit.",
      domain_constraints_include: ["example.edu", "*.example.edu"],
      domain_constraints_exclude: ["bad.example.edu"],
      high_assurance: true,
      authentication_assurance_timeout: 30,
      required_mfa: true,
    });
    expect(parsed(name)).toMatchObject({ authentication_policy: created?.id, high_assurance: true });
  });

  it("--auth-timeout alone makes the new policy High-Assurance (the endpoint stays non-HA)", async () => {
    const project = await newProject("Timeouts");
    const name = fresh();
    const args = ["--auth-policy-project-id", project.id, "--auth-timeout", "600", "--auth-policy-display-name", "T"];
    const result = await runCli(["configure", name, ...args], env);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const policy = (await policiesOf()).find((p) => p.project_id === project.id);
    expect(policy).toMatchObject({ high_assurance: true, authentication_assurance_timeout: 600, display_name: "T" });
    expect(parsed(name)).toMatchObject({ authentication_policy: policy?.id, high_assurance: false });
  });

  it("on a terminal without --auth-policy-project-id, lists the user's projects, then creates one when none is picked", async () => {
    const user = await newUser();
    await newProject("Existing", user.token);
    const name = fresh();
    const args = ["configure", name, "--allowed-domains", "example.org", "--contact-email", "ops@example.org"];
    const run = inPty(
      [process.execPath, CLI, ...args],
      cliEnv(userDir, { url: context.service.url, token: user.token }),
    );
    await run.waitFor(/1\. id: [0-9a-f-]+, name: Existing/);
    await run.waitFor(/Project number \(1-1, or blank\): $/);
    run.type("");
    await run.waitFor(/Enter a name for this project: $/);
    run.type("Fresh project");
    await run.waitFor(/contact email for this project \[ops@example\.org\]: $/);
    run.type("");
    await run.waitFor(/start over\): $/);
    run.type("y");
    await run.waitFor(/Created project Fresh project \(([0-9a-f-]+)\)/);
    expect(await run.exited).toBe(0);
    const project = (await projectsOf(user.token)).find((p) => p.display_name === "Fresh project");
    expect(project?.contact_email).toBe("ops@example.org");
    const policy = (await policiesOf(user.token)).find((p) => p.project_id === project?.id);
    expect(policy?.domain_constraints_include).toEqual(["example.org"]);
    expect(parsed(name).authentication_policy).toBe(policy?.id);
  });

  it("on a terminal, a picked project gets the policy", async () => {
    const user = await newUser();
    await newProject("Other", user.token);
    const picked = await newProject("Picked", user.token);
    const name = fresh();
    const userEnv = cliEnv(userDir, { url: context.service.url, token: user.token });
    const run = inPty([process.execPath, CLI, "configure", name, "--excluded-domains", "bad.org"], userEnv);
    await run.waitFor(/Project number \(1-2, or blank\): $/);
    run.type("2");
    expect(await run.exited).toBe(0);
    const policy = (await policiesOf(user.token)).find((p) => p.project_id === picked.id);
    expect(policy?.domain_constraints_exclude).toEqual(["bad.org"]);
    expect(parsed(name).authentication_policy).toBe(policy?.id);
  });
});

describe("config.yaml's High-Assurance keys", () => {
  it("start refuses audit_log_path without high_assurance with exit 78 and one sentence", async () => {
    const name = fresh();
    expect((await runCli(["configure", name], env)).code).toBe(0);
    const config = join(userDir, name, "config.yaml");
    writeFileSync(config, `${readFileSync(config, "utf8")}audit_log_path: /tmp/audit.log\n`);
    const result = await runCli(["start", name], env);
    expect(result.code).toBe(78);
    expect(result.stderr).toBe(
      `Error: ${config}: \`audit_log_path\` is set but \`high_assurance\` is not true, and audit logging is only for High-Assurance endpoints; set high_assurance: true (with an HA authentication_policy and subscription_id) or remove audit_log_path.\n`,
    );
  });

  // The same checks start runs (the CLI path of a config error is the test above's).
  it.each([
    [`high_assurance: true\nsubscription_id: ${SUBSCRIPTION}`, `${HA_MESSAGE}, and authentication_policy is not set;`],
    ["high_assurance: true", `${HA_MESSAGE}, and authentication_policy and subscription_id are not set;`],
    ["high_assurance: yes please", "`high_assurance` must be true or false"],
    ["authentication_policy: policy-1", "`authentication_policy` must be an authentication policy id (a UUID"],
    ["subscription_id: 12", "`subscription_id` must be a subscription id (a UUID"],
    ["contact_email: nobody", "`contact_email` must be an email address"],
  ])("refuses %j with one sentence", (lines, sentence) => {
    expect(() => parseManagerConfig(`${lines}\n`, "config.yaml")).toThrow(sentence);
  });

  it("accepts an HA endpoint's keys, lower-casing the ids", () => {
    const text = `high_assurance: true\naudit_log_path: /var/log/a.log\nauthentication_policy: ${POLICY.toUpperCase()}\nsubscription_id: ${SUBSCRIPTION}\n`;
    expect(parseManagerConfig(text, "config.yaml")).toMatchObject({
      high_assurance: true,
      audit_log_path: "/var/log/a.log",
      authentication_policy: POLICY,
      subscription_id: SUBSCRIPTION,
    });
  });

  it("registers an HA endpoint with its policy in force: the service keeps it HA and refuses a submit the policy does not admit", async () => {
    const name = fresh();
    const project = await newProject("Registered");
    const subscriptionId = await subscription(true);
    const args = ["--high-assurance", "--subscription-id", subscriptionId, "--auth-policy-project-id", project.id];
    const configured = await runCli(
      ["configure", name, ...args, "--allowed-domains", "example.edu", "--contact-email", "ha@example.org"],
      env,
    );
    expect(configured.stderr).toBe("");
    const policyId = parsed(name).authentication_policy;
    const { mep, highAssurance, client, task } = await startWithTask(name);
    expect(highAssurance).toBe(true);
    const refused = await client.submit(mep.endpointId, { tasks: [task] }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(AuthPolicyUnmetError);
    expect((refused as Error).message).toContain(`(${policyId}) admits only identities of example.edu`);
  }, 90_000);

  it("a plain endpoint registers with high_assurance false and no policy: its owner's submit goes through", async () => {
    const name = fresh();
    expect((await runCli(["configure", name], env)).code).toBe(0);
    const { mep, highAssurance, client, task } = await startWithTask(name);
    expect(highAssurance).toBe(false);
    expect((await client.submit(mep.endpointId, { tasks: [task] })).task_ids).toHaveLength(1);
  }, 90_000);
});

describe("a High-Assurance endpoint's user endpoints", () => {
  /** An HA endpoint whose template is `template`. */
  async function haEndpoint(template: string): Promise<string> {
    const name = fresh();
    expect((await runCli(["configure", name], env)).code).toBe(0);
    const config = join(userDir, name, "config.yaml");
    const ha = `high_assurance: true\nauthentication_policy: ${POLICY}\nsubscription_id: ${SUBSCRIPTION}\n`;
    writeFileSync(config, `${readFileSync(config, "utf8")}${ha}`);
    writeFileSync(join(userDir, name, "user_config_template.yaml.j2"), template);
    return name;
  }

  it("refuse the HighThroughputEngine (GlobusComputeEngine) with encrypted: false", async () => {
    const name = await haEndpoint("engine:\n  type: GlobusComputeEngine\n  encrypted: false\n");
    const result = await runCli(["render", name], env);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`Error (config): ${HA_ENGINE_REFUSAL}\n`);
    expect(HA_ENGINE_REFUSAL).toBe("Engine configuration is not High Assurance compliant.  Endpoint will not start.");
  });

  it("accept the ThreadPoolEngine (the encrypted HighThroughputEngine: see configure --high-assurance above)", async () => {
    const name = await haEndpoint("engine:\n  type: ThreadPoolEngine\n");
    const result = await runCli(["render", name], env);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
  });

  it("refuse a template that sets high_assurance itself", async () => {
    const name = fresh();
    expect((await runCli(["configure", name], env)).code).toBe(0);
    writeFileSync(
      join(userDir, name, "user_config_template.yaml.j2"),
      "engine:\n  type: ThreadPoolEngine\nhigh_assurance: false\n",
    );
    const result = await runCli(["render", name], env);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      "Error (config): The rendered user_config_template.yaml.j2: `high_assurance` may not be specified in template; remove it: a user endpoint is High-Assurance exactly when high_assurance is set in the manager's config.yaml.\n",
    );
  });
});
