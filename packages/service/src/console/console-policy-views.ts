/**
 * The console's pages for projects, authentication policies and
 * subscriptions, through {@link html} like the others (console-views.ts).
 * Each form carries the session's CSRF token.
 */
import type { AuthPolicyRecord, ProjectRecord, SubscriptionRecord } from "../store/store.js";
import { CONSOLE_PATH, type Viewer } from "./console-views.js";
import { type Html, html } from "./html.js";

function time(date: Date): Html {
  return html`<time datetime="${date.toISOString()}">${date.toISOString()}</time>`;
}

function csrfField(viewer: Viewer): Html {
  return html`<input type="hidden" name="csrf" value="${viewer.csrf}">`;
}

function domains(patterns: string[]): string {
  return patterns.length === 0 ? "any" : patterns.join(", ");
}

export function projectsPage(projects: ProjectRecord[], viewer: Viewer): Html {
  const table =
    projects.length === 0
      ? html`<p class="empty">You have no projects yet; a project holds your authentication policies.</p>`
      : html`<table class="projects"><thead><tr><th>Display name</th><th>Description</th><th>Contact</th><th>Created</th><th>Id</th></tr></thead><tbody>
${projects.map(
  (p) =>
    html`<tr data-project="${p.id}"><td>${p.displayName}</td><td>${p.description}</td><td>${p.contactEmail ?? ""}</td><td>${time(p.createdAt)}</td><td><code>${p.id}</code></td></tr>`,
)}</tbody></table>`;
  return html`${table}
<h2>New project</h2>
<form method="post" action="${CONSOLE_PATH}/projects">${csrfField(viewer)}
<label>Display name <input name="display_name" required maxlength="256"></label>
<label>Description <input name="description" maxlength="4096"></label>
<label>Contact email <input name="contact_email" type="email" maxlength="320"></label>
<button type="submit">Create project</button></form>`;
}

export function policiesPage(policies: AuthPolicyRecord[], projects: ProjectRecord[], viewer: Viewer): Html {
  const table =
    policies.length === 0
      ? html`<p class="empty">You have no authentication policies yet.</p>`
      : html`<table class="policies"><thead><tr><th>Display name</th><th>High-Assurance</th><th>Allowed domains</th><th>Created</th><th>Id</th></tr></thead><tbody>
${policies.map(
  (p) =>
    html`<tr data-policy="${p.id}"><td><a href="${CONSOLE_PATH}/policies/${p.id}">${p.displayName}</a></td><td>${p.highAssurance ? "yes" : "no"}</td><td>${domains(p.domainInclude)}</td><td>${time(p.createdAt)}</td><td><code>${p.id}</code></td></tr>`,
)}</tbody></table>`;
  const form =
    projects.length === 0
      ? html`<p>A policy belongs to a project: <a href="${CONSOLE_PATH}/projects">create a project</a> first.</p>`
      : html`<form method="post" action="${CONSOLE_PATH}/policies">${csrfField(viewer)}
<label>Project <select name="project_id">${projects.map((p) => html`<option value="${p.id}">${p.displayName}</option>`)}</select></label>
<label>Display name <input name="display_name" required maxlength="256"></label>
<label>Description <input name="description" maxlength="4096"></label>
<label>Allowed domains <input name="domain_constraints_include" placeholder="example.edu, *.example.org"></label>
<label>Excluded domains <input name="domain_constraints_exclude"></label>
<label>Login timeout (seconds) <input name="authentication_assurance_timeout" type="number" min="0" max="31536000"></label>
<label><input type="checkbox" name="high_assurance" value="on"> High-Assurance</label>
<label><input type="checkbox" name="required_mfa" value="on"> Requires a second factor (High-Assurance only)</label>
<button type="submit">Create policy</button></form>`;
  return html`${table}
<h2>New authentication policy</h2>
${form}`;
}

export function policyPage(policy: AuthPolicyRecord, project: ProjectRecord | undefined, warnings: string[]): Html {
  return html`${warnings.map((w) => html`<p class="warning" role="status">${w}</p>`)}
<dl class="facts"><dt>Id</dt><dd><code>${policy.id}</code></dd>
<dt>Project</dt><dd>${project ? project.displayName : ""} <code>${policy.projectId}</code></dd>
<dt>Description</dt><dd>${policy.description}</dd>
<dt>Allowed domains</dt><dd class="domain-include">${domains(policy.domainInclude)}</dd>
<dt>Excluded domains</dt><dd class="domain-exclude">${policy.domainExclude.length === 0 ? "none" : policy.domainExclude.join(", ")}</dd>
<dt>High-Assurance</dt><dd class="high-assurance">${policy.highAssurance ? "yes" : "no"}</dd>
<dt>Login timeout</dt><dd class="timeout">${policy.authTimeout === null ? "none" : `${policy.authTimeout} s`}</dd>
<dt>Second factor required</dt><dd class="mfa">${policy.requiredMfa ? "yes" : "no"}</dd>
<dt>Created</dt><dd>${time(policy.createdAt)}</dd></dl>
<p>An endpoint applies it with <code>conduit-endpoint configure --auth-policy ${policy.id}</code>.</p>`;
}

export function subscriptionsPage(subscriptions: SubscriptionRecord[], viewer: Viewer): Html {
  const table =
    subscriptions.length === 0
      ? html`<p class="empty">There are no subscriptions yet.</p>`
      : html`<table class="subscriptions"><thead><tr><th>Display name</th><th>High-Assurance</th><th>Created</th><th>Id</th></tr></thead><tbody>
${subscriptions.map(
  (s) =>
    html`<tr data-subscription="${s.id}"><td>${s.displayName}</td><td>${s.highAssurance ? "yes" : "no"}</td><td>${time(s.createdAt)}</td><td><code>${s.id}</code></td></tr>`,
)}</tbody></table>`;
  return html`${table}
<h2>New subscription</h2>
<form method="post" action="${CONSOLE_PATH}/subscriptions">${csrfField(viewer)}
<label>Display name <input name="display_name" required maxlength="256"></label>
<label><input type="checkbox" name="high_assurance" value="on"> High-Assurance</label>
<button type="submit">Create subscription</button></form>`;
}
