import { Button, Space, Tag } from 'antd'
import { useMutation, useQueryClient } from '@tanstack/react-query'
import { api, unwrap } from '../../api/client'
import type { Automation } from './automation'
import { count } from '../../ui/format'
import type { Notice } from './shared'
import { ConfirmButton } from '../../ui/ConfirmButton'

/** The firings on record by status, as tags. */
export function FiringCounts({ firings }: { firings: Record<string, number> }) {
  const entries = Object.entries(firings)
  if (entries.length === 0) return <Tag>none yet</Tag>
  return (
    <Space size={[0, 4]} wrap>
      {entries.map(([status, n]) => (
        <Tag key={status}>
          {status.replace('_', ' ')}: {count(n)}
        </Tag>
      ))}
    </Space>
  )
}

/** Pause or resume, and delete: on the list and on an automation's own page. */
export function AutomationButtons({
  workspaceId,
  automation,
  onNotice,
  onDeleted,
}: {
  workspaceId: number
  automation: Automation
  onNotice: (notice: Notice) => void
  onDeleted?: () => void
}) {
  const client = useQueryClient()
  const path = { workspace_id: workspaceId, automation_id: automation.id }
  const refresh = () => client.invalidateQueries({ queryKey: ['automations', workspaceId] })
  const fail = (error: Error) => onNotice({ type: 'error', text: error.message })
  const toggle = useMutation({
    mutationFn: () =>
      automation.status === 'active'
        ? unwrap(api.POST('/api/v1/workspaces/{workspace_id}/automations/{automation_id}/pause', { params: { path } }))
        : unwrap(api.POST('/api/v1/workspaces/{workspace_id}/automations/{automation_id}/resume', { params: { path } })),
    onSuccess: refresh,
    onError: fail,
  })
  const remove = useMutation({
    mutationFn: () =>
      unwrap(api.DELETE('/api/v1/workspaces/{workspace_id}/automations/{automation_id}', { params: { path } })),
    onSuccess: async () => {
      onDeleted?.()
      await refresh()
    },
    onError: fail,
  })
  return (
    <Space size="small">
      <Button size="small" loading={toggle.isPending} onClick={() => toggle.mutate()}>
        {automation.status === 'active' ? 'Pause' : 'Resume'}
      </Button>
      <ConfirmButton
        verb="Delete"
        question={`Delete ${automation.name}?`}
        consequence="Its firings on record go with it."
        onConfirm={() => remove.mutate()}
        size="small"
        pending={remove.isPending}
      />
    </Space>
  )
}
