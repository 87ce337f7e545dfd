import type { components } from '../../api/schema'

type Answer = components['schemas']['AnalysisPublic']
export type Row = components['schemas']['TablePublic']['rows'][number]

/** The rows of one table of an analysis's answer (empty if it has none). The client
 * types an analysis's answer as unknown, because the route may also answer CSV; its JSON
 * is the schema's AnalysisPublic. */
export function rowsOf(answer: unknown, table: string): Row[] {
  return (answer as Answer).tables[table]?.rows ?? []
}

/** A number cell (analyses answer null for a number that cannot be computed). */
export function num(row: Row | undefined, column: string): number | null {
  const value = row?.[column]
  return typeof value === 'number' ? value : null
}

export function str(row: Row | undefined, column: string): string {
  const value = row?.[column]
  return value == null ? '' : String(value)
}

/** The segment's row (by name) and the whole base's ("All customers") of a comparison. */
export function baseAndSegment(rows: Row[], name: string): { base?: Row; segment?: Row } {
  const segment = rows.find((r) => r.segment === name)
  return { segment, base: rows.find((r) => r.segment === 'All customers' && r !== segment) }
}
