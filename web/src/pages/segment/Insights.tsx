import { useQuery } from '@tanstack/react-query'
import { Alert, Button, List, Space, Tag } from 'antd'
import { useNavigate } from 'react-router-dom'
import { api } from '../../api/client'
import { Nothing, Query } from '../../ui/states'
import { rowsOf, text, analysis } from '../../ui/workspace'

/** What the numbers say about the segment, and what to do about it: each recommendation
 * leads to the actions (campaigns, syncs, automations) that act on the segment. */
export function Insights({ workspaceId, segmentId }: { workspaceId: number; segmentId: number }) {
  const navigate = useNavigate()
  const insights = useQuery({
    queryKey: ['analysis', 'insights', workspaceId, segmentId],
    queryFn: () =>
      analysis(
        api.GET('/api/v1/workspaces/{workspace_id}/analyses/insights', {
          params: { path: { workspace_id: workspaceId }, query: { segment: String(segmentId) } },
        }),
      ),
  })
  return (
    <Query query={insights} what="insights">
      {(answer) => {
        const rows = rowsOf(answer, 'insights')
        if (rows.length === 0) return <Nothing>No insights for this segment yet.</Nothing>
        const findings = rows.filter((r) => r.type !== 'recommendation')
        const recommendations = rows.filter((r) => r.type === 'recommendation')
        return (
          <Space orientation="vertical" style={{ width: '100%' }}>
            {recommendations.map((r, i) => (
              <Alert
                key={i}
                type="info"
                showIcon
                title="Recommended action"
                description={text(r, 'text')}
                action={
                  <Button type="primary" onClick={() => navigate(`/w/${workspaceId}/actions/campaigns?segment=${segmentId}`)}>
                    Act on it
                  </Button>
                }
              />
            ))}
            <List
              size="small"
              aria-label="Findings"
              dataSource={findings}
              renderItem={(r) => (
                <List.Item>
                  <Space align="start">
                    <Tag style={{ minWidth: 84, textAlign: 'center' }}>{text(r, 'topic')}</Tag>
                    <span>{text(r, 'text')}</span>
                  </Space>
                </List.Item>
              )}
            />
          </Space>
        )
      }}
    </Query>
  )
}
