import type { Row } from '../../ui/workspace'

/** The segment's row (by name) and the whole base's ("All customers") of a comparison. */
export function baseAndSegment(rows: Row[], name: string): { base?: Row; segment?: Row } {
  const segment = rows.find((r) => r.segment === name)
  return { segment, base: rows.find((r) => r.segment === 'All customers' && r !== segment) }
}
