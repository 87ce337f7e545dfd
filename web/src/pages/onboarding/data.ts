import { useQuery } from '@tanstack/react-query'
import { api, unwrap } from '../../api/client'
import type { components } from '../../api/schema'

export type Job = components['schemas']['JobPublic']

/** A job that will not change any more. */
export function finished(job: Job | undefined): boolean {
  return job !== undefined && ['succeeded', 'failed', 'interrupted'].includes(job.status)
}

/** One job, asked for again every second until it has finished. */
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

export const count = (n: number) => n.toLocaleString('en-US')
export const money = (n: number) =>
  n.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })
export const percent = (share: number) => `${Math.round(share * 100)}%`

/** "1998-06-30 00:00:00" or an ISO time, as "Jun 30, 1998". */
export function day(value: string): string {
  const date = new Date(value.replace(' ', 'T').slice(0, 19) + 'Z')
  return Number.isNaN(date.getTime())
    ? value
    : date.toLocaleDateString('en-US', { year: 'numeric', month: 'short', day: 'numeric', timeZone: 'UTC' })
}
