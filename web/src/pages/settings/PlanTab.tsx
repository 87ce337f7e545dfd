import { Alert, Button, Card, Col, Popconfirm, Progress, Row, Space, Statistic, Table, Tag, Typography } from 'antd'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { api, unwrap } from '../../api/client'
import type { components } from '../../api/schema'
import { Query } from '../../ui/states'
import { ChangeFailed, Section } from './parts'
import { count } from '../../ui/format'
import { useWorkspace } from './common'

type Plan = components['schemas']['PlanPublic']
type Usage = components['schemas']['UsagePublic']
type PlanName = components['schemas']['PlanChange']['plan']

function price(plan: Plan): string {
  if (plan.monthly_price != null) return `$${count(plan.monthly_price)} a month`
  return plan.name === 'unlimited' ? 'free, self-hosted' : 'custom price'
}

/** The plan, what the workspace holds against its limits, this month's usage and the
 * months before, and moving to another plan (owners only). */
export default function PlanTab() {
  const { workspaceId } = useWorkspace()
  const path = { workspace_id: workspaceId }
  const usage = useQuery({
    queryKey: ['settings-usage', workspaceId],
    queryFn: () => unwrap(api.GET('/api/v1/workspaces/{workspace_id}/usage', { params: { path } })),
  })
  const catalog = useQuery({
    queryKey: ['settings-plans', workspaceId],
    queryFn: () => unwrap(api.GET('/api/v1/workspaces/{workspace_id}/plans', { params: { path } })),
  })
  return (
    <Query query={usage} what="the plan and usage">
      {(u) => (
        <Space orientation="vertical" size="large" style={{ width: '100%' }}>
          <Row gutter={[24, 24]}>
            <Col xs={24} lg={12}>
              <Limits usage={u} />
            </Col>
            <Col xs={24} lg={12}>
              <ThisMonth usage={u} />
            </Col>
          </Row>
          <Query query={catalog} what="the plans">
            {(c) => <Plans usage={u} plans={c.plans} features={c.features} />}
          </Query>
        </Space>
      )}
    </Query>
  )
}

function Meter({ label, held, limit, note }: { label: string; held: number; limit: number | null; note?: string }) {
  const percent = limit ? Math.min(100, (100 * held) / limit) : 0
  return (
    <div aria-label={label}>
      <Space style={{ width: '100%', justifyContent: 'space-between' }} wrap>
        <Typography.Text strong>{label}</Typography.Text>
        <Typography.Text>
          {count(held)} {limit != null ? `of ${count(limit)}` : '(no limit)'}
        </Typography.Text>
      </Space>
      <Progress
        percent={limit ? percent : 100}
        showInfo={false}
        status={limit && percent >= 90 ? 'exception' : 'normal'}
        strokeColor={limit ? undefined : '#d9d9d9'}
      />
      {note && <Typography.Text type="secondary">{note}</Typography.Text>}
    </div>
  )
}

function Limits({ usage }: { usage: Usage }) {
  const plan = usage.plan
  return (
    <Section title={`${plan.title} plan`} extra={<Typography.Text type="secondary">{price(plan)}</Typography.Text>}>
      <Meter label="Customers" held={usage.customers} limit={plan.max_customers} />
      <Meter
        label="Segments (rule and static)"
        held={usage.segments}
        limit={plan.max_segments}
        note={`${count(usage.segments_all_kinds - usage.segments)} more made by Strata (RFM, tiers, clusters, predictions) do not count.`}
      />
    </Section>
  )
}

function ThisMonth({ usage }: { usage: Usage }) {
  const m = usage.this_month
  const [year, month] = m.month.split('-').map(Number)
  const title = new Date(Date.UTC(year, month - 1, 1)).toLocaleDateString('en-US', {
    month: 'long',
    year: 'numeric',
    timeZone: 'UTC',
  })
  return (
    <Section title={`Usage in ${title}`} intro="Counted, not limited: no plan stops these.">
      <Row gutter={16}>
        <Col xs={24} sm={8}>
          <Statistic title="Events ingested" value={count(m.events_ingested)} />
        </Col>
        <Col xs={24} sm={8}>
          <Statistic title="API calls" value={count(m.api_calls)} />
        </Col>
        <Col xs={24} sm={8}>
          <Statistic title="Exports" value={count(m.exports)} />
        </Col>
      </Row>
      {usage.history.length > 0 && (
        <Table
          rowKey="month"
          size="small"
          pagination={false}
          dataSource={usage.history}
          scroll={{ x: 'max-content' }}
          columns={[
            { title: 'Month', dataIndex: 'month' },
            { title: 'Events', dataIndex: 'events_ingested', align: 'right', render: count },
            { title: 'API calls', dataIndex: 'api_calls', align: 'right', render: count },
            { title: 'Exports', dataIndex: 'exports', align: 'right', render: count },
          ]}
        />
      )}
    </Section>
  )
}

/** Why the workspace cannot move to a plan, or null when it fits. */
function outgrows(plan: Plan, usage: Usage): string | null {
  if (plan.max_customers != null && usage.customers > plan.max_customers)
    return `holds ${count(usage.customers)} customers; ${plan.title} allows ${count(plan.max_customers)}`
  if (plan.max_segments != null && usage.segments > plan.max_segments)
    return `has ${count(usage.segments)} segments; ${plan.title} allows ${count(plan.max_segments)}`
  return null
}

function Plans({ usage, plans, features }: { usage: Usage; plans: Plan[]; features: Record<string, string> }) {
  const { workspaceId, isOwner } = useWorkspace()
  const client = useQueryClient()
  const move = useMutation({
    mutationFn: (plan: PlanName) =>
      unwrap(
        api.PUT('/api/v1/workspaces/{workspace_id}/plan', {
          params: { path: { workspace_id: workspaceId } },
          body: { plan },
        }),
      ),
    onSettled: () => client.invalidateQueries({ queryKey: ['settings-usage', workspaceId] }),
  })
  return (
    <Section
      title="Plans"
      intro={isOwner ? 'Move the workspace to another plan; it takes effect at once.' : 'Only the owner changes the plan.'}
    >
      {move.isSuccess && !move.isPending && (
        <Alert type="success" showIcon title={`The workspace is on the ${move.data.title} plan now.`} />
      )}
      <ChangeFailed error={move.error} />
      <div style={{ display: 'grid', gridTemplateColumns: 'repeat(auto-fit, minmax(200px, 1fr))', gap: 16 }}>
        {plans.map((plan) => {
          const current = plan.name === usage.plan.name
          const tooSmall = outgrows(plan, usage)
          return (
            <Card
              key={plan.name}
              size="small"
              aria-label={`${plan.title} plan`}
              title={plan.title}
              extra={current && <Tag color="blue">current</Tag>}
              style={{ height: '100%', borderColor: current ? '#1677ff' : undefined }}
            >
              <Space orientation="vertical" style={{ width: '100%' }}>
                <Typography.Text strong>{price(plan)}</Typography.Text>
                <Typography.Text>
                  {plan.max_customers != null ? `${count(plan.max_customers)} customers` : 'Unlimited customers'}
                  <br />
                  {plan.max_segments != null ? `${count(plan.max_segments)} segments` : 'Unlimited segments'}
                </Typography.Text>
                <ul style={{ margin: 0, paddingLeft: 0, listStyle: 'none' }}>
                  {Object.entries(features).map(([name, meaning]) => (
                    <li key={name} style={{ color: plan.features.includes(name) ? undefined : '#bbb' }}>
                      {plan.features.includes(name) ? '✓' : '✗'} {meaning.split(' (')[0]}
                    </li>
                  ))}
                </ul>
                {isOwner && !current && (
                  <Popconfirm
                    title={`Move to ${plan.title}?`}
                    description={price(plan)}
                    okText="Move"
                    onConfirm={() => move.mutateAsync(plan.name as PlanName).catch(() => undefined)}
                    disabled={!!tooSmall}
                  >
                    <Button block disabled={!!tooSmall} loading={move.isPending && move.variables === plan.name}>
                      Move to {plan.title}
                    </Button>
                  </Popconfirm>
                )}
                {!current && tooSmall && <Typography.Text type="secondary">Too small: the workspace {tooSmall}.</Typography.Text>}
              </Space>
            </Card>
          )
        })}
      </div>
    </Section>
  )
}
