/**
 * The web console: server-rendered pages under `/console` (and `GET /`, which
 * leads there), signed in with an API token or through the service's own
 * login (console-oidc.ts). Each page asks the store what the REST API would
 * answer the same identity: its own endpoints and multi-user ones, its own
 * tasks, task groups and functions.
 *
 * Every answer carries a strict Content-Security-Policy (scripts and styles
 * from the console's own files only, no inline code), forms carry CSRF
 * tokens, and the session cookie is HttpOnly and SameSite=Strict. The routes
 * are hidden from /openapi.json and need no bearer token (the session stands
 * in for it).
 */
import { readFile } from "node:fs/promises";
import { TASK_STATES, type TaskState } from "@conduit/protocol";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { isAdmin } from "../api/routes/policy-routes.js";
import type { Authenticator } from "../auth/authenticator.js";
import type { OidcService } from "../auth/oidc.js";
import { ServiceError } from "../errors.js";
import type { Store } from "../store/store.js";
import type { EndpointRecord, Identity } from "../store/store-types.js";
import { consoleOidcRoutes } from "./console-oidc.js";
import { consolePolicyRoutes, type FormBody } from "./console-policy-routes.js";
import {
  type ConsoleSession,
  PRE_SESSION_COOKIE,
  readCookie,
  SESSION_COOKIE,
  SESSION_TTL_S,
  type SessionSealer,
} from "./console-session.js";
import {
  CONSOLE_PATH,
  endpointPage,
  endpointsPage,
  functionsPage,
  layout,
  messagePage,
  signInPage,
  type TaskListFilter,
  taskGroupPage,
  taskGroupsPage,
  taskPage,
  type Viewer,
} from "./console-views.js";
import type { Html } from "./html.js";
import { LiveStreams } from "./live-streams.js";

export interface ConsoleDeps {
  store: Store;
  authenticator: Authenticator;
  sealer: SessionSealer;
  /** The OpenID provider, once the service listens. */
  oidc(): OidcService | undefined;
  /** How often the live charts get a point, in milliseconds. @default 1000 */
  liveIntervalMs?: number;
}

const STATIC_DIR = new URL("../../static/", import.meta.url);
const STATIC_FILES: Record<string, string> = {
  "console.js": "text/javascript; charset=utf-8",
  "console.css": "text/css; charset=utf-8",
};

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join("; ");

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Signed in: the session's identity and what its pages need. */
export interface SignedIn {
  identity: Identity;
  viewer: Viewer;
}

type NotFoundCode =
  | "ROUTE_NOT_FOUND"
  | "ENDPOINT_NOT_FOUND"
  | "TASK_NOT_FOUND"
  | "TASK_GROUP_NOT_FOUND"
  | "AUTH_POLICY_NOT_FOUND";

function notFound(what: string, code: NotFoundCode): ServiceError {
  return new ServiceError(code, `${what} does not exist, or is not yours to see.`);
}

/** A path id that is a UUID (lower-cased), else a 404 naming it. */
function uuidParam(value: string, what: string, code: NotFoundCode): string {
  if (!UUID.test(value)) throw notFound(`${what} ${value}`, code);
  return value.toLowerCase();
}

export async function consoleRoutes(app: FastifyInstance, deps: ConsoleDeps): Promise<void> {
  const { store, authenticator, sealer } = deps;
  const statics = new Map<string, Buffer>();
  for (const name of Object.keys(STATIC_FILES)) statics.set(name, await readFile(new URL(name, STATIC_DIR)));
  const live = new LiveStreams(store, deps.liveIntervalMs ?? 1000);
  app.addHook("preClose", async () => live.closeAll());

  /** The signed-in identity, or undefined (the cookie is then cleared and the reason given). */
  async function signedIn(
    request: FastifyRequest,
    reply: FastifyReply,
  ): Promise<{ ok: SignedIn } | { problem?: string }> {
    const session = sealer.session(request);
    if (!session) return {};
    try {
      const identity = await authenticator.identify(`Bearer ${session.token}`);
      const csrf = sealer.csrfFor(readCookie(request, SESSION_COOKIE) ?? "");
      return { ok: { identity, viewer: { username: identity.username, csrf, admin: isAdmin(identity) } } };
    } catch (err) {
      if (!(err instanceof ServiceError) || err.statusCode !== 401) throw err;
      sealer.clearCookie(reply, SESSION_COOKIE);
      return { problem: "Your session ended (its token expired or was revoked); sign in again." };
    }
  }

  function send(reply: FastifyReply, title: string, viewer: Viewer | undefined, body: Html, status = 200) {
    return reply
      .code(status)
      .type("text/html; charset=utf-8")
      .send(layout(title, viewer, body));
  }

  function showSignIn(reply: FastifyReply, request: FastifyRequest, problem?: string, status = 200) {
    let pre = readCookie(request, PRE_SESSION_COOKIE);
    if (!pre || pre.length < 22) {
      pre = sealer.seal({ at: Date.now() });
      sealer.setCookie(reply, PRE_SESSION_COOKIE, pre, 3600);
    }
    return send(reply, "Sign in", undefined, signInPage(sealer.csrfFor(pre), problem), status);
  }

  /** A page for the signed-in; others are sent to sign in. */
  function page<P extends Record<string, string>, Q extends Record<string, string | undefined>>(
    url: string,
    render: (who: SignedIn, request: FastifyRequest<{ Params: P; Querystring: Q }>) => Promise<[string, Html]>,
  ) {
    app.get<{ Params: P; Querystring: Q }>(
      url,
      { config: { public: true }, schema: { hide: true } },
      async (request, reply) => {
        const who = await signedIn(request, reply);
        if (!("ok" in who)) {
          if (who.problem) return showSignIn(reply, request, who.problem, 401);
          return reply.redirect(`${CONSOLE_PATH}/sign-in`, 303);
        }
        const [title, body] = await render(who.ok, request);
        return send(reply, title, who.ok.viewer, body);
      },
    );
  }

  /** A form's target for the signed-in: its CSRF token checked, then `act` answers where to go next (303). */
  function action(url: string, act: (who: SignedIn, body: FormBody) => Promise<string>) {
    app.post<{ Body: FormBody }>(url, { config: { public: true }, schema: { hide: true } }, async (request, reply) => {
      const who = await signedIn(request, reply);
      if (!("ok" in who)) {
        if (who.problem) return showSignIn(reply, request, who.problem, 401);
        return reply.redirect(`${CONSOLE_PATH}/sign-in`, 303);
      }
      if (!sealer.csrfMatches(readCookie(request, SESSION_COOKIE), request.body?.csrf)) {
        const message = messagePage("The form expired; reload the page and send it again.");
        return send(reply, "Not saved", who.ok.viewer, message, 403);
      }
      return reply.redirect(await act(who.ok, request.body ?? {}), 303);
    });
  }

  /** The endpoint if the identity may see it (its own, or a multi-user one), as GET /v1/endpoints/:id decides. */
  async function visibleEndpoint(id: string, identity: Identity): Promise<EndpointRecord> {
    const endpointId = uuidParam(id, "Endpoint", "ENDPOINT_NOT_FOUND");
    const endpoint = await store.getEndpoint(endpointId);
    if (!endpoint || (!endpoint.multiUser && endpoint.ownerId !== identity.id))
      throw notFound(`Endpoint ${endpointId}`, "ENDPOINT_NOT_FOUND");
    return endpoint;
  }

  app.addHook("onRequest", async (request, reply) => {
    if (request.url !== "/" && !request.url.startsWith(CONSOLE_PATH)) return;
    reply.header("content-security-policy", CSP);
    reply.header("x-content-type-options", "nosniff");
    reply.header("referrer-policy", "same-origin");
    reply.header("x-frame-options", "DENY");
    reply.header("cache-control", "no-store");
  });
  // Errors of console pages are pages too (a JSON body would be a dead end in a browser).
  app.setErrorHandler((err, request, reply) => {
    const status = err instanceof ServiceError ? err.statusCode : ((err as { statusCode?: number }).statusCode ?? 500);
    if (status >= 500) request.log.error({ err }, `${request.method} ${request.url} failed.`);
    const message =
      status >= 500 ? "The console could not answer; the service's log says why." : (err as Error).message;
    return send(reply, "Not available", undefined, messagePage(message), status);
  });
  app.addContentTypeParser(
    "application/x-www-form-urlencoded",
    { parseAs: "string", bodyLimit: 16_384 },
    (_request, body, done) => done(null, Object.fromEntries(new URLSearchParams(String(body)))),
  );

  const publicRoute = { config: { public: true }, schema: { hide: true } } as const;
  app.get("/", publicRoute, async (_request, reply) => reply.redirect(`${CONSOLE_PATH}/`, 302));
  app.get(CONSOLE_PATH, publicRoute, async (_request, reply) => reply.redirect(`${CONSOLE_PATH}/`, 302));

  app.get<{ Params: { file: string } }>(`${CONSOLE_PATH}/static/:file`, publicRoute, async (request, reply) => {
    const content = statics.get(request.params.file);
    if (!content) throw notFound(`File ${request.params.file}`, "ROUTE_NOT_FOUND");
    return reply.type(STATIC_FILES[request.params.file]).header("cache-control", "public, max-age=300").send(content);
  });

  app.get(`${CONSOLE_PATH}/sign-in`, publicRoute, async (request, reply) => showSignIn(reply, request));

  app.post<{ Body: Record<string, string | undefined> }>(
    `${CONSOLE_PATH}/sign-in`,
    publicRoute,
    async (request, reply) => {
      const body = request.body ?? {};
      if (!sealer.csrfMatches(readCookie(request, PRE_SESSION_COOKIE), body.csrf)) {
        return showSignIn(reply, request, "The form expired; sign in again.", 403);
      }
      const token = (body.token ?? "").trim();
      if (!token) return showSignIn(reply, request, "Enter an API token.", 400);
      try {
        await authenticator.identify(`Bearer ${token}`);
      } catch (err) {
        if (!(err instanceof ServiceError) || err.statusCode !== 401) throw err;
        return showSignIn(
          reply,
          request,
          "That API token is not valid (or it expired); ask the service's administrator for one.",
          401,
        );
      }
      startSession(reply, token, Date.now() + SESSION_TTL_S * 1000);
      return reply.redirect(`${CONSOLE_PATH}/`, 303);
    },
  );

  function startSession(reply: FastifyReply, token: string, expiresAt: number): void {
    const session: ConsoleSession = { token, expiresAt: Math.min(expiresAt, Date.now() + SESSION_TTL_S * 1000) };
    sealer.setCookie(reply, SESSION_COOKIE, sealer.seal(session), Math.floor((session.expiresAt - Date.now()) / 1000));
    sealer.clearCookie(reply, PRE_SESSION_COOKIE);
  }

  app.post<{ Body: Record<string, string | undefined> }>(
    `${CONSOLE_PATH}/sign-out`,
    publicRoute,
    async (request, reply) => {
      if (!sealer.csrfMatches(readCookie(request, SESSION_COOKIE), request.body?.csrf)) {
        return send(reply, "Not signed out", undefined, messagePage("The form expired; sign out again."), 403);
      }
      sealer.clearCookie(reply, SESSION_COOKIE);
      return reply.redirect(`${CONSOLE_PATH}/sign-in`, 303);
    },
  );

  consoleOidcRoutes(app, { sealer, oidc: deps.oidc, startSession, showSignIn });

  page(`${CONSOLE_PATH}/`, async ({ identity }) => {
    const endpoints = await store.listEndpoints(identity.id);
    return ["Endpoints", endpointsPage(endpoints)];
  });

  page<{ id: string }, { state?: string; function?: string; group?: string }>(
    `${CONSOLE_PATH}/endpoints/:id`,
    async ({ identity }, request) => {
      const endpoint = await visibleEndpoint(request.params.id, identity);
      const filter = taskFilter(request.query);
      const [ueps, tasks] = await Promise.all([
        // The owner sees every UEP of its endpoint; another user of a multi-user endpoint, only its own.
        store.listUeps(endpoint.id, endpoint.ownerId === identity.id ? undefined : identity.id),
        store.listTasks({
          ownerId: identity.id,
          endpointId: endpoint.id,
          state: filter.state as TaskState | undefined,
          functionId: filter.functionId,
          taskGroupId: filter.taskGroupId,
        }),
      ]);
      return [endpoint.displayName ?? endpoint.name, endpointPage(endpoint, ueps, tasks, filter)];
    },
  );

  app.get<{ Params: { id: string } }>(`${CONSOLE_PATH}/endpoints/:id/live`, publicRoute, async (request, reply) => {
    const who = await signedIn(request, reply);
    if (!("ok" in who)) throw new ServiceError("UNAUTHORIZED", "Sign in to the console first.");
    const endpoint = await visibleEndpoint(request.params.id, who.ok.identity);
    live.open(request, reply, who.ok.identity.id, endpoint.id);
  });

  page<{ id: string }, Record<string, never>>(`${CONSOLE_PATH}/tasks/:id`, async ({ identity }, request) => {
    const taskId = uuidParam(request.params.id, "Task", "TASK_NOT_FOUND");
    const task = await store.taskTimeline(taskId);
    // As GET /v2/tasks/:id: another identity's task is "not found".
    if (!task || task.ownerId !== identity.id) throw notFound(`Task ${taskId}`, "TASK_NOT_FOUND");
    const endpoint = await store.getEndpoint(task.endpointId);
    const visible = endpoint && (endpoint.multiUser || endpoint.ownerId === identity.id) ? endpoint : undefined;
    return [`Task ${task.id}`, taskPage(task, visible)];
  });

  consolePolicyRoutes({
    store,
    page: (url, render) =>
      page<Record<string, string>, Record<string, never>>(url, (who, request) => render(who, request.params)),
    action,
    notFound: (what, id) => notFound(`${what} ${id}`, "AUTH_POLICY_NOT_FOUND"),
  });

  page(`${CONSOLE_PATH}/functions`, async ({ identity }) => [
    "Functions",
    functionsPage(await store.listFunctions(identity.id)),
  ]);

  page(`${CONSOLE_PATH}/task-groups`, async ({ identity }) => [
    "Task groups",
    taskGroupsPage(await store.listTaskGroups(identity.id)),
  ]);

  page<{ id: string }, Record<string, never>>(`${CONSOLE_PATH}/task-groups/:id`, async ({ identity }, request) => {
    const groupId = uuidParam(request.params.id, "Task group", "TASK_GROUP_NOT_FOUND");
    const group = await store.getTaskGroup(groupId);
    if (!group || group.ownerId !== identity.id) throw notFound(`Task group ${groupId}`, "TASK_GROUP_NOT_FOUND");
    const tasks = await store.listTasks({ ownerId: identity.id, taskGroupId: groupId });
    return [`Task group ${group.id}`, taskGroupPage(group, tasks)];
  });
}

/** The filters of a task listing, from its query; a malformed one is a 400 naming it. */
function taskFilter(query: { state?: string; function?: string; group?: string }): TaskListFilter {
  const filter: TaskListFilter = {};
  if (query.state) {
    if (!(TASK_STATES as readonly string[]).includes(query.state)) {
      throw new ServiceError(
        "INVALID_REQUEST",
        `State ${query.state} is not a task state; choose one of ${TASK_STATES.join(", ")}.`,
      );
    }
    filter.state = query.state;
  }
  for (const [field, key] of [
    ["function", "functionId"],
    ["group", "taskGroupId"],
  ] as const) {
    const value = query[field]?.trim();
    if (!value) continue;
    if (!UUID.test(value)) {
      throw new ServiceError("INVALID_REQUEST", `The ${field} filter ${value} is not a UUID; paste the whole id.`);
    }
    filter[key] = value.toLowerCase();
  }
  return filter;
}
