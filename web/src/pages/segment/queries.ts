import { useQuery } from '@tanstack/react-query'
import { api } from '../../api/client'
import { analysis } from '../../ui/workspace'

/** What each part of the segment page is given: which segment, and its name (the
 * analyses answer rows by segment name). */
export type SegmentPart = { workspaceId: number; segmentId: number; name: string }

// The analyses the segment page draws on; each keyed by workspace and segment, so two
// parts of the page that need the same one share a single request.

export function useRevenue(workspaceId: number, segmentId: number) {
  return useQuery({
    queryKey: ['analysis', 'revenue', workspaceId, segmentId],
    queryFn: () =>
      analysis(
        api.GET('/api/v1/workspaces/{workspace_id}/analyses/revenue', {
          params: { path: { workspace_id: workspaceId }, query: { segments: [String(segmentId)] } },
        }),
      ),
  })
}

export function useCompare(workspaceId: number, segmentId: number) {
  return useQuery({
    queryKey: ['analysis', 'compare', workspaceId, segmentId],
    queryFn: () =>
      analysis(
        api.GET('/api/v1/workspaces/{workspace_id}/analyses/compare', {
          params: { path: { workspace_id: workspaceId }, query: { segments: [String(segmentId)] } },
        }),
      ),
  })
}
