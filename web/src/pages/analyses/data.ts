/** One row of an analysis table: the API sends every table as plain records. */
export type Row = Record<string, unknown>

/** A number field of a table row (0 when missing). */
export function num(row: Row, key: string): number {
  const value = row[key]
  return typeof value === 'number' ? value : 0
}

/** A text field of a table row. */
export function text(row: Row, key: string): string {
  const value = row[key]
  return value == null ? '' : String(value)
}
