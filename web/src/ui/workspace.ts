// What most screens read about their workspace: its id in the address, its segments,
// a background job, and analyses. One query key per thing, so that a change made on one
// screen (a new segment, a refresh) reaches every other screen's cache.
import { useQuery } from '@tanstack/react-query'
import { useParams } from 'react-router-dom'
import { api, unwrap } from '../api/client'
import type { components } from '../api/schema'

export type Segment = components['schemas']['SegmentPublic']
export type Job = components['schemas']['JobPublic']
export type Analysis = components['schemas']['AnalysisPublic']
/** One row of an analysis table: the API sends every table as plain records. */
export type Row = components['schemas']['TablePublic']['rows'][number]

/** The workspace in the address (`/w/:workspaceId/…`). */
export function useWorkspaceId(): number {
  return Number(useParams().workspaceId)
}

/** Every segment of the workspace (pickers, links and colours need their ids).
 * `refetchOnMount: 'always'` for a screen that has just changed them. */
export function useSegments(workspaceId: number, refetchOnMount: boolean | 'always' = true) {
  return useQuery({
    queryKey: ['segments', workspaceId],
    refetchOnMount,
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/segments', {
          params: { path: { workspace_id: workspaceId }, query: { limit: 500 } },
        }),
      ),
  })
}

/** A job that will not change any more. */
export function finished(job: Job | undefined): boolean {
  return job !== undefined && ['succeeded', 'failed', 'interrupted'].includes(job.status)
}

/** One background job, asked for again every second until it has finished. */
export function useJob(workspaceId: number, jobId: number | null) {
  return useQuery({
    queryKey: ['job', workspaceId, jobId],
    enabled: jobId !== null,
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/jobs/{job_id}', {
          params: { path: { workspace_id: workspaceId, job_id: jobId! } },
        }),
      ),
    refetchInterval: (query) => (finished(query.state.data) ? false : 1000),
  })
}

/** An analysis route's answer. Those routes can also answer CSV, so openapi-fetch types
 * their body as unknown; asked without format=csv, it is always this JSON. */
export async function analysis(answer: Parameters<typeof unwrap>[0]): Promise<Analysis> {
  return (await unwrap(answer)) as Analysis
}

/** The rows of one table of an analysis (empty if it has none). */
export function rowsOf(answer: Analysis, table: string): Row[] {
  return answer.tables[table]?.rows ?? []
}

/** A number cell; null when the API left it out or could not compute it. */
export function num(row: Row | undefined, column: string): number | null {
  const value = row?.[column]
  return typeof value === 'number' && Number.isFinite(value) ? value : null
}

/** A text cell ('' when empty). */
export function text(row: Row | undefined, column: string): string {
  const value = row?.[column]
  return value == null ? '' : String(value)
}
