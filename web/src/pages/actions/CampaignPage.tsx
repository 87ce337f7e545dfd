import { useState } from 'react'
import { Descriptions, Space, Typography } from 'antd'
import { useQuery } from '@tanstack/react-query'
import { useNavigate, useParams } from 'react-router-dom'
import { api, unwrap } from '../../api/client'
import { Query } from '../../ui/states'
import { CampaignResults } from './CampaignResults'
import { CampaignButtons } from './CampaignButtons'
import { when } from '../../ui/format'
import { useWorkspaceId } from '../../ui/workspace'
import { DetailHeader, type Notice, NoticeBar, SegmentLink } from './shared'

/** One campaign: its settings, launch and end, and its lift measured now. */
export function CampaignPage() {
  const workspaceId = useWorkspaceId()
  const campaignId = Number(useParams().campaignId)
  const navigate = useNavigate()
  const [notice, setNotice] = useState<Notice | null>(null)
  const back = `/w/${workspaceId}/actions/campaigns`
  const campaign = useQuery({
    queryKey: ['campaigns', workspaceId, campaignId],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/campaigns/{campaign_id}', {
          params: { path: { workspace_id: workspaceId, campaign_id: campaignId } },
        }),
      ),
  })
  return (
    <Query query={campaign} what="the campaign">
      {(c) => (
        <Space orientation="vertical" size="large" style={{ width: '100%' }}>
          <DetailHeader back={back} list="Campaigns" name={c.name} status={c.status} />
          <Descriptions
            bordered
            size="small"
            column={{ xs: 1, md: 3 }}
            items={[
              {
                key: 'segment',
                label: 'Segment',
                children: <SegmentLink workspaceId={workspaceId} id={c.segment_id} name={c.segment} />,
              },
              { key: 'action', label: 'Action', children: c.kind },
              { key: 'holdout', label: 'Holdout', children: `${c.holdout_percent}%` },
              { key: 'goal', label: 'Goal event', children: c.goal_event ?? 'none' },
              { key: 'started', label: 'Started', children: when(c.started_at, 'not yet') },
              { key: 'ended', label: 'Ended', children: when(c.ended_at, c.status === 'running' ? 'running' : '–') },
            ]}
          />
          <CampaignButtons
            workspaceId={workspaceId}
            campaign={c}
            onNotice={setNotice}
            onDeleted={() => navigate(back)}
          />
          <NoticeBar notice={notice} onClose={() => setNotice(null)} />
          {c.status === 'draft' ? (
            <Typography.Paragraph type="secondary">
              A draft does nothing yet. Launch it to act on the segment's members, hold{' '}
              {c.holdout_percent}% of them out, and measure the lift on {c.goal_event ?? 'a goal event'}.
            </Typography.Paragraph>
          ) : (
            <CampaignResults workspaceId={workspaceId} campaignId={c.id} />
          )}
        </Space>
      )}
    </Query>
  )
}
