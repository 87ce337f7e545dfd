import { Card, Col, Row as Grid, Statistic, Typography } from 'antd'
import { Failed, Loading } from '../../ui/states'
import { num, rowsOf, type Row } from '../../ui/workspace'
import { baseAndSegment } from './analysis'
import { count, decimal, money, percent } from '../../ui/format'
import { type SegmentPart, useCompare, useRevenue } from './queries'

type Metric = {
  title: string
  value: string
  /** How it reads against the whole customer base. */
  note: string
}

/** The segment's key numbers as cards, each against the whole customer base. */
export function Kpis({ workspaceId, segmentId, name }: SegmentPart) {
  const revenue = useRevenue(workspaceId, segmentId)
  const compare = useCompare(workspaceId, segmentId)
  if (revenue.isError) return <Failed error={revenue.error} />
  if (compare.isError) return <Failed error={compare.error} />
  if (revenue.isPending || compare.isPending) return <Loading what="the segment's numbers" />
  const r = baseAndSegment(rowsOf(revenue.data, 'revenue'), name)
  const c = baseAndSegment(rowsOf(compare.data, 'kpis'), name)
  const metrics = [
    {
      title: 'Members',
      value: count(num(r.segment, 'customers') ?? 0),
      note: `${percent(num(r.segment, 'share_of_customers') ?? 0)} of all customers`,
    },
    {
      title: 'Revenue',
      value: money(num(r.segment, 'revenue') ?? 0),
      note: `${percent(num(r.segment, 'share_of_revenue') ?? 0)} of all revenue`,
    },
    against('Revenue per customer', r, 'revenue_per_customer', money),
    against('Average order value', r, 'average_order_value', money),
    against('Orders per customer', r, 'orders_per_customer', (n) => decimal(n, 2)),
    against('Days since last order', c, 'average_days_since_last_order', (n) => decimal(n)),
  ]
  return (
    <Grid gutter={[16, 16]}>
      {metrics.map((m) => (
        <Col key={m.title} xs={12} md={8} xl={4}>
          <Card size="small" style={{ height: '100%' }}>
            <Statistic title={m.title} value={m.value} />
            <Typography.Text type="secondary" style={{ fontSize: 12 }}>
              {m.note}
            </Typography.Text>
          </Card>
        </Col>
      ))}
    </Grid>
  )
}

/** A metric of the segment next to the same metric for everyone. */
function against(
  title: string,
  rows: { base?: Row; segment?: Row },
  column: string,
  show: (n: number) => string,
): Metric {
  const mine = num(rows.segment, column)
  const base = num(rows.base, column)
  return {
    title,
    value: mine == null ? '–' : show(mine),
    note: base == null ? 'no orders in the base yet' : `all customers: ${show(base)}`,
  }
}
