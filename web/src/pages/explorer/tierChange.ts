import { useEffect, useState } from 'react'
import { useMutation, useQueryClient } from '@tanstack/react-query'
import { api, unwrap } from '../../api/client'
import type { components } from '../../api/schema'
import { count } from '../../ui/format'
import { useJob } from '../../ui/workspace'

type TierSetUpdate = components['schemas']['TierSetUpdate']

/** Save a tier set and follow the job that re-evaluates its segments. When it succeeds,
 * every view of tiers, segments and comparisons is refetched, so the explorer shows the
 * new members at once. */
export function useTierChange(workspaceId: number) {
  const client = useQueryClient()
  const [jobId, setJobId] = useState<number | null>(null)
  const save = useMutation({
    mutationFn: ({ name, body }: { name: string; body: TierSetUpdate }) =>
      unwrap(
        api.PUT('/api/v1/workspaces/{workspace_id}/tiers/{name}', {
          params: { path: { workspace_id: workspaceId, name } },
          body,
        }),
      ),
    onSuccess: (job) => setJobId(job.id),
  })
  const job = useJob(workspaceId, jobId)
  const status = job.data?.status
  useEffect(() => {
    if (status !== 'succeeded') return
    for (const key of ['tiers', 'segments', 'compare', 'insights'])
      void client.invalidateQueries({ queryKey: [key, workspaceId] })
  }, [status, client, workspaceId])

  const finished = status === 'succeeded' || status === 'failed' || status === 'interrupted'
  const running = save.isPending || (jobId !== null && !finished && !job.isError)
  return {
    save: (name: string, body: TierSetUpdate) => {
      setJobId(null)
      save.mutate({ name, body })
    },
    running,
    /** What happened, in plain words: refused, failed, or saved with each tier's size. */
    outcome: save.isError
      ? { type: 'error' as const, text: save.error.message }
      : job.isError
        ? { type: 'error' as const, text: job.error.message }
        : status === 'failed' || status === 'interrupted'
          ? { type: 'error' as const, text: job.data?.message ?? 'The tiers could not be saved.' }
          : status === 'succeeded'
            ? { type: 'success' as const, text: savedText(job.data?.result) }
            : null,
  }
}

function savedText(result: { [key: string]: unknown } | null | undefined): string {
  const segments = Array.isArray(result?.segments) ? result.segments : []
  const sizes = segments.map(
    (s: { segment?: string; members?: number }) =>
      `${s.segment} ${count(s.members ?? 0)}`,
  )
  return sizes.length ? `Saved; customers per tier now: ${sizes.join(', ')}.` : 'Saved.'
}
