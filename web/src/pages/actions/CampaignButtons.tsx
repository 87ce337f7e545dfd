import { Button, Popconfirm, Space } from 'antd'
import { useMutation, useQueryClient } from '@tanstack/react-query'
import { api, unwrap } from '../../api/client'
import type { components } from '../../api/schema'
import type { Notice } from './shared'
import { ConfirmButton } from '../../ui/ConfirmButton'

export type Campaign = components['schemas']['CampaignPublic']
export type Results = components['schemas']['CampaignResults']

/** Launch a draft, end a running campaign, delete: on the list and on a campaign's page. */
export function CampaignButtons({
  workspaceId,
  campaign,
  onNotice,
  onDeleted,
}: {
  workspaceId: number
  campaign: Campaign
  onNotice: (notice: Notice) => void
  onDeleted?: () => void
}) {
  const client = useQueryClient()
  const path = { workspace_id: workspaceId, campaign_id: campaign.id }
  // Launching and ending act through the campaign's automation: refresh both lists.
  const refresh = () =>
    Promise.all([
      client.invalidateQueries({ queryKey: ['campaigns', workspaceId] }),
      client.invalidateQueries({ queryKey: ['automations', workspaceId] }),
    ])
  const fail = (error: Error) => onNotice({ type: 'error', text: error.message })
  const launch = useMutation({
    mutationFn: () =>
      unwrap(api.POST('/api/v1/workspaces/{workspace_id}/campaigns/{campaign_id}/launch', { params: { path } })),
    onSuccess: () => {
      onNotice({
        type: 'success',
        text: `${campaign.name} is running: members are being acted on, the holdout is left out.`,
      })
      return refresh()
    },
    onError: fail,
  })
  const end = useMutation({
    mutationFn: () =>
      unwrap(api.POST('/api/v1/workspaces/{workspace_id}/campaigns/{campaign_id}/end', { params: { path } })),
    onSuccess: () => {
      onNotice({ type: 'success', text: `${campaign.name} has ended; its results are kept.` })
      return refresh()
    },
    onError: fail,
  })
  const remove = useMutation({
    mutationFn: () =>
      unwrap(api.DELETE('/api/v1/workspaces/{workspace_id}/campaigns/{campaign_id}', { params: { path } })),
    onSuccess: async () => {
      onDeleted?.()
      await refresh()
    },
    onError: fail,
  })
  return (
    <Space size="small">
      {campaign.status === 'draft' && (
        <Popconfirm
          title={`Launch ${campaign.name}?`}
          description={`It acts on every member of ${campaign.segment ?? 'the segment'} now, except the ${
            campaign.holdout_percent
          }% holdout.`}
          okText="Launch"
          onConfirm={() => launch.mutate()}
        >
          <Button size="small" type="primary" loading={launch.isPending}>
            Launch
          </Button>
        </Popconfirm>
      )}
      {campaign.status === 'running' && (
        <Popconfirm
          title={`End ${campaign.name}?`}
          description="It stops acting; the results measured up to now are kept."
          okText="End"
          onConfirm={() => end.mutate()}
        >
          <Button size="small" loading={end.isPending}>
            End
          </Button>
        </Popconfirm>
      )}
      <ConfirmButton
        verb="Delete"
        question={`Delete ${campaign.name}?`}
        consequence="Its automation and the firings on record go with it."
        onConfirm={() => remove.mutate()}
        size="small"
        pending={remove.isPending}
      />
    </Space>
  )
}
