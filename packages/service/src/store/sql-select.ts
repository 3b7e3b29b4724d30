/**
 * SQL pieces every store module uses: select lists whose rows come back in the
 * shape of a store record, and a list of ids bound as one parameter.
 */

/**
 * A select list whose rows are already `T`: each field from its SQL expression,
 * `{ createdAt: "i.created_at" }` giving `i.created_at AS "createdAt"` (both
 * drivers keep a quoted alias's case). Every field of `T` must be named, so a
 * field added to a record without its column does not compile.
 */
export function selectList<T>(fields: { readonly [K in keyof T]-?: string }): string {
  return Object.entries<string>(fields)
    .map(([field, expression]) => `${expression} AS "${field}"`)
    .join(", ");
}

/** A list of uuids as one parameter, `$1` bound to their JSON array (the same text on both drivers). */
export const UUID_LIST = "(SELECT value::uuid FROM jsonb_array_elements_text($1::jsonb))";
