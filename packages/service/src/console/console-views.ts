/**
 * The console's pages, server-rendered through {@link html} (every value
 * escaped). No inline script or style: console.js and console.css are the
 * only ones, under the Content-Security-Policy of console-routes.ts.
 */
import { TASK_STATES, type WireError } from "@conduit/protocol";
import type { FunctionSummary, TaskTimeline, UepSummary } from "../store/console-queries.js";
import type { EndpointRecord, TaskGroupRecord, TaskRecord } from "../store/store-types.js";
import { type Html, html } from "./html.js";

export const CONSOLE_PATH = "/console";

/** Who is signed in, and the CSRF token of their forms. */
export interface Viewer {
  username: string;
  csrf: string;
  /** The service's administrator, who also manages subscriptions. */
  admin?: boolean;
}

export function layout(title: string, viewer: Viewer | undefined, body: Html): string {
  const nav = viewer
    ? html`<nav><a href="${CONSOLE_PATH}">Endpoints</a> <a href="${CONSOLE_PATH}/functions">Functions</a>
<a href="${CONSOLE_PATH}/task-groups">Task groups</a>
<a href="${CONSOLE_PATH}/projects">Projects</a> <a href="${CONSOLE_PATH}/policies">Policies</a>${viewer.admin ? html` <a href="${CONSOLE_PATH}/subscriptions">Subscriptions</a>` : ""}
<span class="who">${viewer.username}</span>
<form method="post" action="${CONSOLE_PATH}/sign-out" class="inline"><input type="hidden" name="csrf" value="${viewer.csrf}"><button type="submit">Sign out</button></form></nav>`
    : "";
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Conduit console</title>
<link rel="stylesheet" href="${CONSOLE_PATH}/static/console.css">
<script src="${CONSOLE_PATH}/static/console.js" defer></script>
</head><body>
<header><a class="brand" href="${CONSOLE_PATH}">Conduit</a>${nav}</header>
<main><h1>${title}</h1>
${body}
</main></body></html>
`.text;
}

export function signInPage(csrf: string, problem: string | undefined): Html {
  return html`${problem ? html`<p class="error" role="alert">${problem}</p>` : ""}
<p><a class="button" href="${CONSOLE_PATH}/oidc/start">Sign in with your Conduit account</a></p>
<h2>Or with an API token</h2>
<form method="post" action="${CONSOLE_PATH}/sign-in">
<input type="hidden" name="csrf" value="${csrf}">
<label>API token <input type="password" name="token" autocomplete="off" required></label>
<button type="submit">Sign in</button>
</form>`;
}

function time(date: Date | null): Html {
  return date ? html`<time datetime="${date.toISOString()}">${date.toISOString()}</time>` : html`—`;
}

function endpointLink(e: EndpointRecord): Html {
  return html`<a href="${CONSOLE_PATH}/endpoints/${e.id}">${e.displayName ?? e.name}</a>`;
}

export function endpointsPage(endpoints: EndpointRecord[]): Html {
  if (endpoints.length === 0)
    return html`<p>You have no endpoints yet: <code>conduit-endpoint configure</code> makes one.</p>`;
  return html`<table class="endpoints"><thead><tr><th>Display name</th><th>Name</th><th>State</th><th>Owner</th><th>Multi-user</th><th>Last heartbeat</th><th>Id</th></tr></thead><tbody>
${endpoints.map(
  (
    e,
  ) => html`<tr><td>${endpointLink(e)}</td><td>${e.name}</td><td class="state-${e.status}">${e.status}</td><td>${e.ownerUsername}</td>
<td>${e.multiUser ? "yes" : "no"}</td><td>${time(e.lastHeartbeat)}</td><td><code>${e.id}</code></td></tr>`,
)}
</tbody></table>`;
}

export interface TaskListFilter {
  state?: string;
  functionId?: string;
  taskGroupId?: string;
}

function tasksTable(tasks: TaskRecord[]): Html {
  if (tasks.length === 0) return html`<p class="empty">No tasks match.</p>`;
  return html`<table class="tasks"><thead><tr><th>Task</th><th>State</th><th>Function</th><th>Submitted</th><th>Completed</th></tr></thead><tbody>
${tasks.map(
  (
    t,
  ) => html`<tr data-task="${t.id}"><td><a href="${CONSOLE_PATH}/tasks/${t.id}">${t.id}</a></td><td class="state-${t.state}">${t.state}</td>
<td><code>${t.functionId}</code></td><td>${time(t.createdAt)}</td><td>${time(t.completedAt)}</td></tr>`,
)}
</tbody></table>`;
}

export function endpointPage(
  endpoint: EndpointRecord,
  ueps: UepSummary[],
  tasks: TaskRecord[],
  filter: TaskListFilter,
): Html {
  const states = ["", ...TASK_STATES];
  return html`<dl class="facts"><dt>Name</dt><dd>${endpoint.name}</dd><dt>State</dt><dd class="state-${endpoint.status}">${endpoint.status}</dd>
<dt>Owner</dt><dd>${endpoint.ownerUsername}</dd><dt>Id</dt><dd><code>${endpoint.id}</code></dd>
<dt>Last heartbeat</dt><dd>${time(endpoint.lastHeartbeat)}</dd>
${endpoint.lastError ? html`<dt>Last error</dt><dd class="error">${endpoint.lastError.message}</dd>` : ""}</dl>
<h2>Live</h2>
<section class="live" data-live="${CONSOLE_PATH}/endpoints/${endpoint.id}/live">
<figure><figcaption>Throughput (tasks/s): <output data-series="throughput">0</output></figcaption><canvas width="360" height="120" data-chart="throughput"></canvas></figure>
<figure><figcaption>Latency p50 / p95 / p99 (s): <output data-series="latency">—</output></figcaption><canvas width="360" height="120" data-chart="latency"></canvas></figure>
<figure><figcaption>Queue depth: <output data-series="queued">0</output>, running: <output data-series="running">0</output></figcaption><canvas width="360" height="120" data-chart="queued"></canvas></figure>
</section>
<h2>User endpoints</h2>
${
  ueps.length === 0
    ? html`<p class="empty">No user endpoint has started here yet.</p>`
    : html`<table class="ueps"><thead><tr><th>UEP</th><th>User</th><th>Config</th><th>Engine</th><th>Workers (idle of total)</th><th>Blocks</th><th>Waiting</th><th>Running</th><th>Started</th><th>Last heartbeat</th></tr></thead><tbody>
${ueps.map(
  (u) => html`<tr><td><code>${u.id}</code></td><td>${u.username}</td><td><code>${JSON.stringify(u.config)}</code></td>
<td>${u.engine?.type ?? "not reported yet"}</td><td class="workers">${u.engine ? `${u.engine.idleWorkers} of ${u.engine.totalWorkers}` : ""}</td>
<td>${u.engine?.blocks ?? ""}</td><td>${u.waiting}</td><td>${u.running}</td><td>${time(u.createdAt)}</td><td>${time(u.lastSeen)}</td></tr>`,
)}</tbody></table>`
}
<h2>Tasks</h2>
<form method="get" class="filters">
<label>State <select name="state">${states.map(
    (s) => html`<option value="${s}"${s === (filter.state ?? "") ? html` selected` : ""}>${s || "any"}</option>`,
  )}</select></label>
<label>Function <input name="function" value="${filter.functionId ?? ""}" placeholder="function id"></label>
<label>Task group <input name="group" value="${filter.taskGroupId ?? ""}" placeholder="task group id"></label>
<button type="submit">Filter</button></form>
${tasksTable(tasks)}`;
}

function errorDetail(error: WireError): Html {
  return html`<dl class="facts error-detail"><dt>Code</dt><dd><code>${error.code}</code></dd><dt>Type</dt><dd>${error.name}</dd>
<dt>Message</dt><dd class="error-message">${error.message}</dd></dl>
${error.stack ? html`<h3>Remote stack</h3><pre class="stack">${error.stack}</pre>` : ""}
${error.cause ? html`<h3>Caused by</h3>${errorDetail(error.cause)}` : ""}`;
}

function seconds(from: Date, to: Date): string {
  return `${((to.getTime() - from.getTime()) / 1000).toFixed(3)} s`;
}

export function taskPage(task: TaskTimeline, endpoint: EndpointRecord | undefined): Html {
  const steps: Array<[string, Date | null]> = [
    ["received", task.createdAt],
    ["waiting-for-endpoint", task.waitingAt],
    ["running", task.runningAt],
    [task.state, task.completedAt],
  ];
  // Measured from the submit, not from the step before: the end is the endpoint's clock, and a
  // fast task can finish before the service has recorded handing it to the broker.
  const reached = steps.filter((step): step is [string, Date] => step[1] !== null);
  return html`<dl class="facts"><dt>State</dt><dd class="state-${task.state}">${task.state}</dd>
<dt>Endpoint</dt><dd>${endpoint ? endpointLink(endpoint) : html`<code>${task.endpointId}</code>`}</dd>
<dt>User endpoint (UEP)</dt><dd><code>${task.uepId}</code></dd>
<dt>Function</dt><dd><code>${task.functionId}</code></dd>
<dt>Task group</dt><dd><a href="${CONSOLE_PATH}/task-groups/${task.taskGroupId}">${task.taskGroupId}</a></dd>
<dt>Arguments</dt><dd>${task.argsBytes} bytes</dd></dl>
<h2>Timings</h2>
<table class="timings"><thead><tr><th>State</th><th>At</th><th>Since the submit</th></tr></thead><tbody>
${reached.map(
  ([state, at]) => html`<tr><td>${state}</td><td>${time(at)}</td><td>${seconds(task.createdAt, at)}</td></tr>`,
)}</tbody></table>
${task.error ? html`<h2>Error</h2>${errorDetail(task.error)}` : ""}
${task.result ? html`<h2>Result</h2><p>Serialized with <code>${task.result.strategy}</code>, ${task.result.data.length} characters.</p>` : ""}`;
}

export function functionsPage(functions: FunctionSummary[]): Html {
  if (functions.length === 0) return html`<p class="empty">You have registered no functions.</p>`;
  return html`<table class="functions"><thead><tr><th>Function</th><th>Name</th><th>Serialized with</th><th>Registered</th></tr></thead><tbody>
${functions.map(
  (f) =>
    html`<tr><td><code>${f.id}</code></td><td>${f.name ?? ""}</td><td><code>${f.strategy}</code></td><td>${time(f.createdAt)}</td></tr>`,
)}</tbody></table>`;
}

function counts(group: TaskGroupRecord): Html {
  const entries = Object.entries(group.taskCounts);
  return entries.length === 0 ? html`none` : html`${entries.map(([state, n]) => `${state}: ${n}`).join(", ")}`;
}

export function taskGroupsPage(groups: TaskGroupRecord[]): Html {
  if (groups.length === 0) return html`<p class="empty">You have no task groups.</p>`;
  return html`<table class="task-groups"><thead><tr><th>Task group</th><th>Created</th><th>Tasks</th></tr></thead><tbody>
${groups.map(
  (g) =>
    html`<tr><td><a href="${CONSOLE_PATH}/task-groups/${g.id}">${g.id}</a></td><td>${time(g.createdAt)}</td><td>${counts(g)}</td></tr>`,
)}</tbody></table>`;
}

export function taskGroupPage(group: TaskGroupRecord, tasks: TaskRecord[]): Html {
  return html`<p>Created ${time(group.createdAt)}; tasks: ${counts(group)}.</p>${tasksTable(tasks)}`;
}

export function messagePage(message: string): Html {
  return html`<p class="error" role="alert">${message}</p><p><a href="${CONSOLE_PATH}">Back to your endpoints</a></p>`;
}
