import { Alert, Card, Col, Row, Space, Statistic, Table, Tag, Typography } from 'antd'
import { useQuery } from '@tanstack/react-query'
import {
  Bar,
  BarChart,
  CartesianGrid,
  Cell,
  ErrorBar,
  LabelList,
  ReferenceLine,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from 'recharts'
import { api, unwrap } from '../../api/client'
import { seriesColor } from '../../ui/colors'
import { Query } from '../../ui/states'
import { FiringCounts } from './AutomationButtons'
import type { Results } from './CampaignButtons'
import { count, percent, points, when } from '../../ui/format'

const TREATED = seriesColor(0)
const HOLDOUT = seriesColor(10)

/** Treated against holdout: sizes, conversions and rates, the lift with its 95% interval,
 * the relative lift and the p-value, in numbers and in two small charts. */
export function CampaignResults({ workspaceId, campaignId }: { workspaceId: number; campaignId: number }) {
  const results = useQuery({
    queryKey: ['campaigns', workspaceId, campaignId, 'results'],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/campaigns/{campaign_id}/results', {
          params: { path: { workspace_id: workspaceId, campaign_id: campaignId } },
        }),
      ),
    // A running campaign's conversions keep coming in: measure again now and then.
    refetchInterval: (query) => (query.state.data?.status === 'running' ? 30_000 : false),
  })
  return (
    <Query query={results} what="the results">
      {(r) => (
        <Space orientation="vertical" size="large" style={{ width: '100%' }}>
          <Space wrap align="baseline">
            <Typography.Title level={5} style={{ margin: 0 }}>
              Results {r.goal_event ? `on ${r.goal_event}` : ''}
            </Typography.Title>
            <Typography.Text type="secondary">
              measured {r.status === 'ended' ? `to the end, ${when(r.ended_at)}` : 'now'}, since {when(r.started_at)}
            </Typography.Text>
          </Space>
          {r.note && <Alert type="info" showIcon title={r.note} />}
          <Row gutter={[16, 16]}>
            <Col xs={24} lg={12}>
              <Groups results={r} />
            </Col>
            <Col xs={24} lg={12}>
              <Lift results={r} />
            </Col>
            <Col xs={24} md={12}>
              <Card size="small" title="Goal rate by group">
                <RateChart results={r} />
              </Card>
            </Col>
            <Col xs={24} md={12}>
              <Card size="small" title="Lift with its 95% interval">
                <LiftChart results={r} />
              </Card>
            </Col>
          </Row>
          <Space wrap>
            <Typography.Text type="secondary">Firings so far:</Typography.Text>
            <FiringCounts firings={r.acted} />
          </Space>
        </Space>
      )}
    </Query>
  )
}

function Groups({ results }: { results: Results }) {
  const rows = [
    { group: 'Treated', ...results.treated },
    { group: 'Holdout', ...results.holdout },
  ]
  return (
    <Table
      aria-label="Groups"
      rowKey="group"
      size="small"
      pagination={false}
      dataSource={rows}
      scroll={{ x: 'max-content' }}
      columns={[
        {
          title: 'Group',
          dataIndex: 'group',
          render: (g: string) => <Tag color={g === 'Treated' ? TREATED : HOLDOUT}>{g}</Tag>,
        },
        { title: 'Customers', dataIndex: 'customers', align: 'right', render: count },
        { title: 'Converted', dataIndex: 'converted', align: 'right', render: count },
        { title: 'Rate', dataIndex: 'rate', align: 'right', render: (rate: number | null) => percent(rate, 2, true) },
      ]}
    />
  )
}

function Lift({ results }: { results: Results }) {
  const significant = results.p_value != null && results.p_value < 0.05
  return (
    <Row gutter={[16, 16]}>
      <Col xs={12}>
        <Statistic
          title="Lift (treated − holdout)"
          value={points(results.lift)}
        />
      </Col>
      <Col xs={12}>
        <Statistic
          title="95% interval"
          value={
            results.interval
              ? `${points(results.interval[0])} to ${points(results.interval[1])}`
              : 'not yet'
          }
          styles={{ content: { fontSize: 18 } }}
        />
      </Col>
      <Col xs={12}>
        <Statistic title="Relative lift" value={signed(results.relative_lift)} />
      </Col>
      <Col xs={12}>
        <Statistic
          title="p-value"
          value={results.p_value == null ? '–' : results.p_value < 0.0001 ? '< 0.0001' : results.p_value.toFixed(4)}
          suffix={
            results.p_value != null && (
              <Tag color={significant ? 'green' : 'default'}>{significant ? 'significant' : 'not significant'}</Tag>
            )
          }
        />
      </Col>
    </Row>
  )
}

/** A relative change with its sign ("+12.50%"). */
function signed(rate: number | null | undefined): string {
  return `${rate != null && rate > 0 ? '+' : ''}${percent(rate, 2, true)}`
}

function RateChart({ results }: { results: Results }) {
  const data = [
    { group: 'Treated', rate: (results.treated.rate ?? 0) * 100, color: TREATED },
    { group: 'Holdout', rate: (results.holdout.rate ?? 0) * 100, color: HOLDOUT },
  ]
  return (
    <ResponsiveContainer width="100%" height={200}>
      <BarChart data={data} margin={{ top: 20, right: 16, left: 0, bottom: 0 }} accessibilityLayer>
        <CartesianGrid strokeDasharray="3 3" vertical={false} />
        <XAxis dataKey="group" />
        <YAxis tickFormatter={(v: number) => `${v}%`} />
        <Tooltip formatter={(v) => percent(Number(v) / 100, 2, true)} />
        <Bar dataKey="rate" name="Goal rate" isAnimationActive={false}>
          {data.map((d) => (
            <Cell key={d.group} fill={d.color} />
          ))}
          <LabelList dataKey="rate" position="top" formatter={(v) => percent(Number(v) / 100, 2, true)} />
        </Bar>
      </BarChart>
    </ResponsiveContainer>
  )
}

/** The axis reaches a round number (1, 2 or 5 times a power of ten) past the interval, the
 * same on both sides so that zero, no lift, sits in the middle. */
function niceBound(reach: number): number {
  const power = 10 ** Math.floor(Math.log10(Math.max(reach, 0.1)))
  return [1, 2, 5, 10].map((m) => m * power).find((b) => b >= reach * 1.05) ?? 10 * power
}

function LiftChart({ results }: { results: Results }) {
  if (results.lift == null) return <Typography.Text type="secondary">No lift to show yet.</Typography.Text>
  const lift = results.lift * 100
  const [low, high] = (results.interval ?? [results.lift, results.lift]).map((v) => v * 100)
  const bound = niceBound(Math.max(Math.abs(low), Math.abs(high), Math.abs(lift)))
  const data = [{ name: 'Lift', lift, error: [lift - low, high - lift] }]
  return (
    <ResponsiveContainer width="100%" height={200}>
      <BarChart data={data} layout="vertical" margin={{ top: 20, right: 24, left: 0, bottom: 0 }} accessibilityLayer>
        <CartesianGrid strokeDasharray="3 3" horizontal={false} />
        <XAxis
          type="number"
          domain={[-bound, bound]}
          ticks={[-bound, -bound / 2, 0, bound / 2, bound]}
          tickFormatter={(v: number) => `${v > 0 ? '+' : ''}${v} pts`}
        />
        <YAxis type="category" dataKey="name" width={48} />
        <Tooltip
          formatter={() => [
            `${points(results.lift)} (95%: ${points(low / 100)} to ${points(high / 100)})`,
            'Lift',
          ]}
        />
        <ReferenceLine x={0} stroke="#595959" />
        <Bar dataKey="lift" barSize={36} isAnimationActive={false}>
          <Cell fill={lift >= 0 ? seriesColor(2) : seriesColor(7)} />
          <ErrorBar dataKey="error" direction="x" width={12} strokeWidth={2} stroke="#262626" />
        </Bar>
      </BarChart>
    </ResponsiveContainer>
  )
}
