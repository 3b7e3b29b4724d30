/**
 * CONTRACT STUB, not the service: a small HTTP server implementing only the
 * routes of /work/wt/CONTRACT18.md that `conduit-endpoint configure` and the
 * MEP's registration call (projects, authentication policies, subscriptions,
 * and the register route, which records its body and refuses with 409). The
 * service's real routes are built on another branch; once they are merged,
 * these tests should run against the service started in-process instead.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface StubPolicy {
  id: string;
  project_id: string;
  high_assurance: boolean;
  [field: string]: unknown;
}

export interface ContractStub {
  url: string;
  token: string;
  /** Every request, in order: method, path and JSON body. */
  requests: Array<{ method: string; path: string; body: unknown }>;
  projects: Array<{ id: string; display_name: string }>;
  policies: Map<string, StubPolicy>;
  subscriptions: Map<string, { id: string; display_name: string; high_assurance: boolean }>;
  /** Sent back in the policy creation answer's `warnings`. */
  policyWarnings: string[];
  close(): Promise<void>;
}

const PREFIX = "/v1";

export async function startContractStub(): Promise<ContractStub> {
  const token = `stub-${randomUUID()}`;
  const stub: Omit<ContractStub, "url" | "close"> = {
    token,
    requests: [],
    projects: [],
    policies: new Map(),
    subscriptions: new Map(),
    policyWarnings: [],
  };
  const server = createServer((req, res) => {
    void readJson(req).then((body) => {
      const path = (req.url ?? "").split("?")[0];
      stub.requests.push({ method: req.method ?? "", path, body });
      const [status, answer] =
        req.headers.authorization === `Bearer ${token}`
          ? route(stub, req.method ?? "", path, body)
          : [401, error("UNAUTHORIZED", "Bad token.")];
      reply(res, status, answer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  // The same object the routes read, so a test's changes (e.g. to policyWarnings) reach them.
  return Object.assign(stub, {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}

function route(
  stub: Omit<ContractStub, "url" | "close">,
  method: string,
  path: string,
  body: unknown,
): [number, unknown] {
  const b = (body ?? {}) as Record<string, unknown>;
  if (method === "GET" && path === `${PREFIX}/projects`) return [200, { projects: stub.projects }];
  if (method === "POST" && path === `${PREFIX}/projects`) {
    const project = { id: randomUUID(), display_name: String(b.display_name), contact_email: b.contact_email ?? null };
    stub.projects.push(project);
    return [200, project];
  }
  if (method === "POST" && path === `${PREFIX}/auth_policies`) {
    if (!stub.projects.some((p) => p.id === b.project_id)) {
      return [404, error("NOT_FOUND", `No project ${String(b.project_id)}.`)];
    }
    const policy: StubPolicy = {
      ...b,
      id: randomUUID(),
      project_id: String(b.project_id),
      high_assurance: b.high_assurance === true,
    };
    stub.policies.set(policy.id, policy);
    return [200, { ...policy, warnings: stub.policyWarnings }];
  }
  const policy = new RegExp(`^${PREFIX}/auth_policies/([0-9a-f-]+)$`).exec(path);
  if (method === "GET" && policy) {
    const found = stub.policies.get(policy[1]);
    return found ? [200, found] : [404, error("NOT_FOUND", `No policy ${policy[1]}.`)];
  }
  const subscription = new RegExp(`^${PREFIX}/subscriptions/([0-9a-f-]+)$`).exec(path);
  if (method === "GET" && subscription) {
    const found = stub.subscriptions.get(subscription[1]);
    return found ? [200, found] : [404, error("NOT_FOUND", `No subscription ${subscription[1]}.`)];
  }
  if (method === "POST" && path === `${PREFIX}/endpoints`) {
    return [409, error("CONFLICT", "Contract stub: registration recorded, not performed.")];
  }
  return [404, error("NOT_FOUND", `The contract stub has no route ${method} ${path}.`)];
}

function error(code: string, message: string) {
  return { code, error: message, message, status: 0 };
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(status >= 400 ? { ...(body as object), status } : body));
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  let text = "";
  for await (const chunk of req) text += chunk;
  return text === "" ? undefined : JSON.parse(text);
}
