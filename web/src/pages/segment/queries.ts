import { useQuery } from '@tanstack/react-query'
import { api, unwrap } from '../../api/client'

// The analyses the segment page draws on; each keyed by workspace and segment, so two
// parts of the page that need the same one share a single request.

export function useRevenue(workspaceId: number, segmentId: number) {
  return useQuery({
    queryKey: ['analysis', 'revenue', workspaceId, segmentId],
    queryFn: () =>
      unwrap(
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
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/analyses/compare', {
          params: { path: { workspace_id: workspaceId }, query: { segments: [String(segmentId)] } },
        }),
      ),
  })
}
