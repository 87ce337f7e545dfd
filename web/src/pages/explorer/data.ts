// What the explorer reads from the API: the compare analysis (KPIs and the metric's
// quartiles per segment), insights for the focused segment, and tier sets.
import { keepPreviousData, useQuery } from '@tanstack/react-query'
import { api, unwrap } from '../../api/client'
import { analysis } from '../../ui/workspace'

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
      const answer = await analysis(
        api.GET('/api/v1/workspaces/{workspace_id}/analyses/compare', {
          params: {
            path: { workspace_id: workspaceId },
            query: { segments: ids.map(String), metric },
          },
        }),
      )
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
      const answer = await analysis(
        api.GET('/api/v1/workspaces/{workspace_id}/analyses/insights', {
          params: { path: { workspace_id: workspaceId }, query: { segment: String(segmentId) } },
        }),
      )
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
