/**
 * `conduit-endpoint list`: the seed's table of local endpoints, read from the
 * endpoint directories alone (works with the service down).
 */
import type { EndpointListing } from "../manager/endpoint-state.js";

/** The seed's three columns, and the cause of a Failed endpoint. */
const HEADERS = ["Endpoint ID", "Status", "Endpoint Name", "Cause"] as const;

/** The table, `+---+` borders and `=` under the header, as texttable draws it for Globus. */
export function renderEndpointTable(endpoints: readonly EndpointListing[]): string {
  if (endpoints.length === 0) return "No endpoints configured!\n\n (Hint: conduit-endpoint configure)\n";
  const rows = endpoints.map((e) => [e.endpointId ?? "", e.state, e.name, e.cause ?? ""]);
  const widths = HEADERS.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const rule = (fill: string) => `+${widths.map((w) => fill.repeat(w + 2)).join("+")}+`;
  const line = (cells: readonly string[], align: (text: string, width: number) => string) =>
    `|${cells.map((c, i) => ` ${align(c, widths[i])} `).join("|")}|`;
  const out = [rule("-"), line(HEADERS, center), rule("=")];
  for (const row of rows)
    out.push(
      line(row, (t, w) => t.padEnd(w)),
      rule("-"),
    );
  return `${out.join("\n")}\n`;
}

function center(text: string, width: number): string {
  const left = Math.floor((width - text.length) / 2);
  return " ".repeat(left) + text.padEnd(width - left);
}
