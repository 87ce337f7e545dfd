import { useQuery } from '@tanstack/react-query'
import { api, unwrap } from '../../api/client'

/** The workspace's figures (customers, orders, first and last event). */
export function useStats(workspaceId: number) {
  return useQuery({
    queryKey: ['stats', workspaceId],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/stats', {
          params: { path: { workspace_id: workspaceId } },
        }),
      ),
  })
}

// The stats route and job results are JSON objects the schema leaves open: read each key
// with its type checked rather than trusting a shape.
export function num(data: unknown, key: string): number | null {
  const value = field(data, key)
  return typeof value === 'number' ? value : null
}

export function text(data: unknown, key: string): string | null {
  const value = field(data, key)
  return typeof value === 'string' ? value : null
}

export function list(data: unknown, key: string): unknown[] {
  const value = field(data, key)
  return Array.isArray(value) ? value : []
}

export function field(data: unknown, key: string): unknown {
  return data !== null && typeof data === 'object' ? (data as Record<string, unknown>)[key] : undefined
}
