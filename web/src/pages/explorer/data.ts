// What the explorer reads from the API: segments, the compare analysis (KPIs and the
// metric's quartiles per segment), insights for the focused segment, tier sets, and the
// job a tier change starts. Analyses answer tables of untyped rows; `cell` reads them.
import { keepPreviousData, useQuery } from '@tanstack/react-query'
import { api, unwrap } from '../../api/client'
import type { components } from '../../api/schema'

export type Segment = components['schemas']['SegmentPublic']
export type Row = components['schemas']['TablePublic']['rows'][number]
// The analysis routes also answer CSV, so the client cannot infer their JSON's type.
type Analysis = components['schemas']['AnalysisPublic']

/** A number column of an analysis row; null when the API left it out or it is empty. */
export function num(row: Row | undefined, column: string): number | null {
  const value = row?.[column]
  return typeof value === 'number' && Number.isFinite(value) ? value : null
}

export function text(row: Row | undefined, column: string): string {
  const value = row?.[column]
  return value == null ? '' : String(value)
}

/** Every segment of the workspace (the same cache as the segments list). */
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

/** The chosen segments side by side, with `metric`'s spread. The route answers the whole
 * base first ("All customers"), then one row per segment in the order asked, so row i + 1
 * is segment ids[i]. */
export function useCompare(workspaceId: number, ids: number[], metric: string) {
  return useQuery({
    queryKey: ['compare', workspaceId, ids, metric],
    enabled: ids.length > 0,
    // Keep the charts on screen while another metric or segment is fetched.
    placeholderData: keepPreviousData,
    queryFn: async () => {
      const answer = (await unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/analyses/compare', {
          params: {
            path: { workspace_id: workspaceId },
            query: { segments: ids.map(String), metric },
          },
        }),
      )) as Analysis
      const kpis = answer.tables.kpis?.rows ?? []
      const spread = answer.tables.distribution?.rows ?? []
      return {
        ids,
        metric,
        base: kpis[0],
        kpis: kpis.slice(1),
        baseSpread: spread[0],
        spread: spread.slice(1),
      }
    },
  })
}

export type Comparison = NonNullable<ReturnType<typeof useCompare>['data']>

/** Findings and recommended actions for one segment. */
export function useInsights(workspaceId: number, segmentId: number | null) {
  return useQuery({
    queryKey: ['insights', workspaceId, segmentId],
    enabled: segmentId !== null,
    queryFn: async () => {
      const answer = (await unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/analyses/insights', {
          params: { path: { workspace_id: workspaceId }, query: { segment: String(segmentId) } },
        }),
      )) as Analysis
      return answer.tables.insights?.rows ?? []
    },
  })
}

export function useTierSets(workspaceId: number) {
  return useQuery({
    queryKey: ['tiers', workspaceId],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/tiers', {
          params: { path: { workspace_id: workspaceId }, query: { limit: 500 } },
        }),
      ),
  })
}

/** A background job, polled every second until it has finished. */
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
    refetchInterval: (query) => {
      const status = query.state.data?.status
      return status === 'succeeded' || status === 'failed' || status === 'interrupted'
        ? false
        : 1000
    },
  })
}
