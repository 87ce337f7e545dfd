import { useQuery } from '@tanstack/react-query'
import { Button, Card, Col, Row, Space, Tabs, Tag, Typography } from 'antd'
import { Link, useNavigate, useParams, useSearchParams } from 'react-router-dom'
import { api, unwrap } from '../api/client'
import { Swatch } from '../ui/Swatch'
import { Query } from '../ui/states'
import { Behaviour } from './segment/Behaviour'
import { Breakdowns } from './segment/Breakdowns'
import { when } from '../ui/format'
import { Insights } from './segment/Insights'
import { Kpis } from './segment/Kpis'
import { Members } from './segment/Members'
import { RevenueSplit } from './segment/RevenueSplit'
import { SizeChart } from './segment/SizeChart'
import { useWorkspaceId } from '../ui/workspace'

const TABS = ['overview', 'audience', 'behaviour', 'members'] as const

/** One segment: its key numbers, then tabs for its size, revenue and insights, who is
 * in it (attributes), what they do (events, order gaps) and its members. The tab is in
 * the address (?tab=members), so it can be bookmarked and shared. */
export default function SegmentPage() {
  const workspaceId = useWorkspaceId()
  const segmentId = Number(useParams().segmentId)
  const [search, setSearch] = useSearchParams()
  const navigate = useNavigate()
  const tab = TABS.find((t) => t === search.get('tab')) ?? 'overview'
  const attribute = search.get('attribute')
  const match = attribute ? { attribute, value: search.get('value') ?? undefined } : undefined
  const segment = useQuery({
    queryKey: ['segment', workspaceId, segmentId],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/segments/{segment_id}', {
          params: { path: { workspace_id: workspaceId, segment_id: segmentId } },
        }),
      ),
  })

  return (
    <Query query={segment} what="the segment">
      {(s) => {
        const props = { workspaceId, segmentId, name: s.name }
        return (
          <Space orientation="vertical" style={{ width: '100%' }} size="large">
            <div>
              <Link to={`/w/${workspaceId}/segments`}>← Segments</Link>
              <Space
                wrap
                align="center"
                style={{ width: '100%', justifyContent: 'space-between', marginTop: 8 }}
              >
                <Space align="center">
                  <Swatch id={segmentId} size={14} />
                  <Typography.Title level={3} style={{ margin: 0 }}>
                    {s.name}
                  </Typography.Title>
                </Space>
                <Button onClick={() => navigate(`/w/${workspaceId}/segments/${segmentId}/edit`)}>
                  Edit
                </Button>
              </Space>
              <Space wrap size={[4, 4]} style={{ marginTop: 8 }}>
                <Tag>{s.kind}</Tag>
                {s.review_status === 'draft' ? (
                  <Tag color="orange">waiting for approval</Tag>
                ) : (
                  <Tag color="green">approved</Tag>
                )}
                <Typography.Text type="secondary">
                  {s.refreshed_at ? `Refreshed ${when(s.refreshed_at)}` : 'Never refreshed'}
                </Typography.Text>
              </Space>
              {s.description && (
                <Typography.Paragraph type="secondary" style={{ marginTop: 8, marginBottom: 0 }}>
                  {s.description}
                </Typography.Paragraph>
              )}
            </div>
            <Kpis {...props} />
            <Tabs
              activeKey={tab}
              destroyOnHidden
              onChange={(key) =>
                setSearch(key === 'overview' ? {} : { tab: key }, { replace: true })
              }
              items={[
                { key: 'overview', label: 'Overview', children: <Overview {...props} /> },
                {
                  key: 'audience',
                  label: 'Audience',
                  children: (
                    <Breakdowns
                      {...props}
                      onPick={({ attribute, value }) =>
                        setSearch(
                          value === undefined
                            ? { tab: 'members', attribute }
                            : { tab: 'members', attribute, value },
                        )
                      }
                    />
                  ),
                },
                { key: 'behaviour', label: 'Behaviour', children: <Behaviour {...props} /> },
                {
                  key: 'members',
                  label: 'Members',
                  children: (
                    <Members
                      {...props}
                      match={match}
                      onClear={() => setSearch({ tab: 'members' }, { replace: true })}
                    />
                  ),
                },
              ]}
            />
          </Space>
        )
      }}
    </Query>
  )
}

function Overview(props: { workspaceId: number; segmentId: number; name: string }) {
  return (
    <Row gutter={[16, 16]}>
      <Col xs={24} lg={12}>
        <Card size="small" title="Size over time">
          <SizeChart {...props} />
        </Card>
      </Col>
      <Col xs={24} lg={12}>
        <Card size="small" title="Revenue contribution">
          <RevenueSplit {...props} />
        </Card>
      </Col>
      <Col xs={24}>
        <Card size="small" title="Insights and recommended actions">
          <Insights {...props} />
        </Card>
      </Col>
    </Row>
  )
}
