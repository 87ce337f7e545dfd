import { useQuery } from '@tanstack/react-query'
import { Card, Col, Row, Space, Statistic, Tag, Typography } from 'antd'
import { Link, useParams } from 'react-router-dom'
import { api, unwrap } from '../api/client'
import { Query } from '../ui/states'
import { Attributes } from './customer/Attributes'
import { Predictions } from './customer/Predictions'
import { SegmentHistory } from './customer/SegmentHistory'
import { Timeline } from './customer/Timeline'
import { num, text, useWorkspaceId } from '../ui/workspace'
import { count, day, money } from '../ui/format'

/** One customer: order totals, attributes (personal data masked for viewers), segments
 * with when they joined and left, predictions with why, and the timeline of events. */
export default function CustomerPage() {
  const workspaceId = useWorkspaceId()
  const externalId = useParams().externalId ?? ''
  const profile = useQuery({
    queryKey: ['customer', workspaceId, externalId],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/customers/{external_id}', {
          // The timeline is paged by its own route below.
          params: {
            path: { workspace_id: workspaceId, external_id: externalId },
            query: { timeline: 0 },
          },
        }),
      ),
  })
  return (
    <Query query={profile} what="the customer">
      {(p) => {
        const customer = (p.customer ?? {}) as Record<string, unknown>
        const predictions = (p.predictions ?? []) as Record<string, unknown>[]
        const name = text(customer, 'name')
        const totals = [
          { title: 'Orders', value: count(num(p, 'orders') ?? 0) },
          { title: 'Net revenue', value: money(num(p, 'net_revenue') ?? 0) },
          { title: 'Events', value: count(num(p, 'events') ?? 0) },
          { title: 'First order', value: p.first_order ? day(text(p, 'first_order')) : '–' },
          { title: 'Last order', value: p.last_order ? day(text(p, 'last_order')) : '–' },
          { title: 'Refunds', value: count(num(p, 'refunds') ?? 0) },
        ]
        return (
          <Space orientation="vertical" style={{ width: '100%' }} size="large">
            <div>
              <Link to={`/w/${workspaceId}/customers`}>← Customers</Link>
              <Typography.Title level={3} style={{ margin: '8px 0 4px' }}>
                {name || externalId}
              </Typography.Title>
              <Space wrap size={[4, 4]}>
                <Tag>{externalId}</Tag>
                {customer.email != null && (
                  <Typography.Text type="secondary">{text(customer, 'email')}</Typography.Text>
                )}
              </Space>
            </div>
            <Row gutter={[16, 16]}>
              {totals.map((t) => (
                <Col key={t.title} xs={12} md={8} xl={4}>
                  <Card size="small" style={{ height: '100%' }}>
                    <Statistic title={t.title} value={t.value} />
                  </Card>
                </Col>
              ))}
            </Row>
            <Row gutter={[16, 16]}>
              <Col xs={24} lg={9}>
                <Space orientation="vertical" style={{ width: '100%' }} size="middle">
                  <Card size="small" title="Attributes">
                    <Attributes customer={customer} />
                  </Card>
                  <Card size="small" title="Segments">
                    <SegmentHistory workspaceId={workspaceId} externalId={externalId} />
                  </Card>
                </Space>
              </Col>
              <Col xs={24} lg={15}>
                <Space orientation="vertical" style={{ width: '100%' }} size="middle">
                  <Card size="small" title="Predictions">
                    <Predictions predictions={predictions} />
                  </Card>
                  <Card size="small" title="Timeline">
                    <Timeline workspaceId={workspaceId} externalId={externalId} />
                  </Card>
                </Space>
              </Col>
            </Row>
          </Space>
        )
      }}
    </Query>
  )
}
