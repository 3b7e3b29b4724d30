/**
 * A loose view of the ESTree nodes acorn returns, shared by function-source
 * normalisation and free-variable analysis: both walk a shipped function's
 * syntax tree reading fields by name, without a typed visitor per node type.
 */

/** An ESTree node; positions are offsets in the parsed text. */
export interface EsNode {
  type: string;
  start: number;
  end: number;
  [field: string]: unknown;
}

/** The nodes directly under `node`, in field order. */
export function children(node: EsNode): EsNode[] {
  const out: EsNode[] = [];
  for (const key of Object.keys(node)) {
    const value = node[key];
    if (Array.isArray(value)) {
      for (const item of value) if (isNode(item)) out.push(item);
    } else if (isNode(value)) {
      out.push(value);
    }
  }
  return out;
}

function isNode(value: unknown): value is EsNode {
  return typeof value === "object" && value !== null && typeof (value as { type?: unknown }).type === "string";
}
