import { Alert, Card, Col, Row, Space, Statistic, Tag, Typography } from 'antd'
import { Link } from 'react-router-dom'
import { Query } from '../../ui/states'
import { num, text, type Row as DataRow, type Segment } from '../../ui/workspace'
import { useInsights } from './data'
import { count, decimal, money, percent } from '../../ui/format'
import { Swatch } from '../../ui/Swatch'

type Metric = {
  title: string
  column: string
  format: (n: number | null) => string
  /** Which way is good, to colour the difference from the whole base. */
  better: 'higher' | 'lower'
}

// The earlier dashboard's metric cards (size, high-value rate, value per customer), plus
// the order figures every workspace has.
const METRICS: Metric[] = [
  {
    title: 'Revenue per customer',
    column: 'revenue_per_customer',
    format: money,
    better: 'higher',
  },
  { title: 'Average order value', column: 'average_order_value', format: money, better: 'higher' },
  {
    title: 'Orders per customer',
    column: 'orders_per_customer',
    format: money,
    better: 'higher',
  },
  {
    title: 'Days since the last order',
    column: 'average_days_since_last_order',
    format: decimal,
    better: 'lower',
  },
  { title: 'High-value rate', column: 'high_value_rate', format: percent, better: 'higher' },
]

function Versus({
  value,
  base,
  card,
}: {
  value: number | null
  base: number | null
  card: Metric
}) {
  if (value === null || base === null || base === 0)
    return <Typography.Text type="secondary">All customers: {card.format(base)}</Typography.Text>
  const change = value / base - 1
  const good = card.better === 'higher' ? change > 0 : change < 0
  const sign = change > 0 ? '+' : ''
  return (
    <Typography.Text type="secondary">
      <span style={{ color: Math.abs(change) < 0.005 ? undefined : good ? '#389e0d' : '#cf1322' }}>
        {sign}
        {(change * 100).toFixed(0)}%
      </span>{' '}
      vs all customers ({card.format(base)})
    </Typography.Text>
  )
}

/** The focused segment: its metric cards against the whole base, and what Strata finds
 * and recommends for it (the insights analysis). */
export function FocusPanel({
  workspaceId,
  segment,
  row,
  base,
}: {
  workspaceId: number
  segment: Segment
  row: DataRow | undefined
  base: DataRow | undefined
}) {
  const insights = useInsights(workspaceId, segment.id)
  return (
    <Space orientation="vertical" size="middle" style={{ width: '100%' }}>
      <Space wrap align="center" style={{ justifyContent: 'space-between', width: '100%' }}>
        <Space align="center" wrap>
          <Swatch id={segment.id} gap={6} />
          <Typography.Title level={4} style={{ margin: 0 }}>
            {segment.name}
          </Typography.Title>
          <Tag>{segment.kind}</Tag>
        </Space>
        <Link to={`/w/${workspaceId}/segments/${segment.id}`}>Open {segment.name} →</Link>
      </Space>
      <Row gutter={[12, 12]} role="region" aria-label={`${segment.name} metrics`}>
        <Col xs={12} md={8} xl={4}>
          <Card size="small" style={{ height: '100%' }}>
            <Statistic title="Customers" value={count(num(row, 'customers'))} />
            <Typography.Text type="secondary">
              {percent(num(row, 'share_of_customers'))} of all customers
            </Typography.Text>
          </Card>
        </Col>
        {METRICS.map((card) => (
          <Col key={card.column} xs={12} md={8} xl={4}>
            <Card size="small" style={{ height: '100%' }}>
              <Statistic title={card.title} value={card.format(num(row, card.column))} />
              <Versus value={num(row, card.column)} base={num(base, card.column)} card={card} />
            </Card>
          </Col>
        ))}
      </Row>
      <Query query={insights} what={`insights for ${segment.name}`}>
        {(rows) => <Insights rows={rows} />}
      </Query>
    </Space>
  )
}

function Insights({ rows }: { rows: DataRow[] }) {
  const findings = rows.filter((r) => text(r, 'type') === 'finding')
  const actions = rows.filter((r) => text(r, 'type') === 'recommendation')
  return (
    <Row gutter={[16, 16]}>
      <Col xs={24} lg={12}>
        <Card size="small" title="Recommendations" style={{ height: '100%' }}>
          {actions.length === 0 ? (
            <Typography.Text type="secondary">
              No action stands out for this segment: its numbers are close to the base's.
            </Typography.Text>
          ) : (
            <Space orientation="vertical" style={{ width: '100%' }} aria-label="Recommendations">
              {actions.map((r, i) => (
                <Alert key={i} type="info" showIcon title={text(r, 'text')} />
              ))}
            </Space>
          )}
        </Card>
      </Col>
      <Col xs={24} lg={12}>
        <Card size="small" title="What stands out" style={{ height: '100%' }}>
          <ul aria-label="Findings" style={{ margin: 0, paddingInlineStart: 18 }}>
            {findings.map((r, i) => (
              <li key={i} style={{ marginBottom: 4 }}>
                {text(r, 'text')}
              </li>
            ))}
          </ul>
        </Card>
      </Col>
    </Row>
  )
}
