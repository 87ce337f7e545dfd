import { useQuery } from '@tanstack/react-query'
import { useParams } from 'react-router-dom'
import { api, unwrap } from '../../api/client'
import { count } from './format'

/** The workspace in the address (`/w/:workspaceId/actions/…`). */
export function useWorkspaceId(): number {
  return Number(useParams().workspaceId)
}

/** The workspace's segments, for the segment pickers of every form here. */
export function useSegments(workspaceId: number) {
  return useQuery({
    queryKey: ['segments', workspaceId, 'for actions'],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/segments', {
          params: { path: { workspace_id: workspaceId }, query: { limit: 500 } },
        }),
      ),
  })
}

export function segmentOptions(segments: ReturnType<typeof useSegments>) {
  return (segments.data?.items ?? []).map((s) => ({
    value: s.id,
    label: `${s.name} (${count(s.customers ?? 0)})`,
  }))
}

/** The webhook endpoints and SMTP servers an action can send through, by id. */
export function useDestinations(workspaceId: number) {
  const path = { workspace_id: workspaceId }
  const webhooks = useQuery({
    queryKey: ['webhooks', workspaceId],
    queryFn: () =>
      unwrap(api.GET('/api/v1/workspaces/{workspace_id}/webhooks', { params: { path, query: { limit: 500 } } })),
  })
  const servers = useQuery({
    queryKey: ['email', workspaceId, 'servers for actions'],
    queryFn: () =>
      unwrap(api.GET('/api/v1/workspaces/{workspace_id}/email/servers', { params: { path, query: { limit: 500 } } })),
  })
  return { webhooks: webhooks.data?.items ?? [], servers: servers.data?.items ?? [] }
}
