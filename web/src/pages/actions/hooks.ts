import { useQuery } from '@tanstack/react-query'
import { useSearchParams } from 'react-router-dom'
import { api, unwrap } from '../../api/client'
import { count } from '../../ui/format'
import type { useSegments } from '../../ui/workspace'

/** The segment a screen sent the reader here to act on (`?segment=<id>`, e.g. from a
 * segment's insights): the new campaign, export and automation forms start with it. */
export function useChosenSegment(): number | undefined {
  const id = Number(useSearchParams()[0].get('segment'))
  return Number.isInteger(id) && id > 0 ? id : undefined
}

/** The workspace's segments as picker options, each with its size. */
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
