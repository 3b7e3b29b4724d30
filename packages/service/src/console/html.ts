/**
 * HTML built by tagged templates that escape every interpolated value unless
 * it is already {@link Html}: a page cannot show a task's error, a function's
 * name or an endpoint's display name as markup by forgetting to escape it.
 */
import { escapeHtml } from "../auth/oidc.js";

/** Markup that is safe to send: made only by {@link html}. */
export class Html {
  /** @internal use {@link html}. */
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

/** What a template accepts: text and numbers are escaped; null and undefined render as nothing. */
export type HtmlValue = Html | string | number | boolean | null | undefined | readonly HtmlValue[];

function render(value: HtmlValue): string {
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map(render).join("");
  if (value === null || value === undefined || value === false) return "";
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): Html {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1];
  return new Html(out);
}
