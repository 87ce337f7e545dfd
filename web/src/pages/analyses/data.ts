import { useQuery } from '@tanstack/react-query'
import { useParams } from 'react-router-dom'
import { api, unwrap } from '../../api/client'
import type { components } from '../../api/schema'

export type Segment = components['schemas']['SegmentPublic']
export type Analysis = components['schemas']['AnalysisPublic']
/** One row of an analysis table: the API sends every table as plain records. */
export type Row = Record<string, unknown>

export function useWorkspaceId(): number {
  return Number(useParams().workspaceId)
}

/** Every segment of the workspace (the pickers and the colours need their ids). */
export function useSegments(workspaceId: number) {
  return useQuery({
    queryKey: ['segments', workspaceId],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/segments', {
          params: { path: { workspace_id: workspaceId }, query: { limit: 500 } },
        }),
      ),
  })
}

/** An analysis route's answer. Those routes can also answer CSV, so openapi-fetch types
 * their body as unknown; asked without format=csv, it is always this JSON. */
export async function analysis(answer: Parameters<typeof unwrap>[0]): Promise<Analysis> {
  return (await unwrap(answer)) as Analysis
}

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

export const count = (n: number) => n.toLocaleString('en-US')
export const percent = (share: number, digits = 1) =>
  `${(share * 100).toLocaleString('en-US', { maximumFractionDigits: digits })}%`
export const money = (n: number) =>
  n.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })

/** A date as people read it: "Mar 2025", or "3 Mar 2025" with the day. */
export function readableDate(iso: string, withDay = true): string {
  const [y, m, d] = iso.slice(0, 10).split('-').map(Number)
  return new Date(Date.UTC(y, m - 1, d)).toLocaleDateString('en-GB', {
    timeZone: 'UTC',
    day: withDay ? 'numeric' : undefined,
    month: 'short',
    year: 'numeric',
  })
}
