import { Typography } from 'antd'
import {
  Bar,
  BarChart,
  Legend,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from 'recharts'
import { segmentColor } from '../../ui/colors'
import { Query } from '../../ui/states'
import { num, rowsOf } from '../../ui/workspace'
import { baseAndSegment } from './analysis'
import { money, percent, decimal } from '../../ui/format'
import { type SegmentPart, useRevenue } from './queries'

const REST = '#d9d9d9'

/** The segment's share of customers next to its share of revenue, against the rest. */
export function RevenueSplit({ workspaceId, segmentId, name }: SegmentPart) {
  const revenue = useRevenue(workspaceId, segmentId)
  return (
    <Query query={revenue} what="the revenue contribution">
      {(answer) => {
        const { base, segment } = baseAndSegment(rowsOf(answer, 'revenue'), name)
        const customers = num(segment, 'share_of_customers') ?? 0
        const revenueShare = num(segment, 'share_of_revenue') ?? 0
        const mine = num(segment, 'revenue') ?? 0
        const all = num(base, 'revenue') ?? 0
        const data = [
          { what: 'Customers', segment: customers, rest: 1 - customers },
          { what: 'Revenue', segment: revenueShare, rest: 1 - revenueShare },
        ]
        const index = num(segment, 'revenue_index')
        return (
          <>
            <ResponsiveContainer width="100%" height={180}>
              <BarChart data={data} layout="vertical" margin={{ left: 8, right: 24 }}>
                <XAxis type="number" domain={[0, 1]} tickFormatter={(v) => percent(v, 0)} />
                <YAxis type="category" dataKey="what" width={80} />
                <Tooltip formatter={(v) => percent(Number(v))} />
                <Legend />
                <Bar
                  dataKey="segment"
                  name={name}
                  stackId="share"
                  fill={segmentColor(segmentId)}
                  isAnimationActive={false}
                />
                <Bar
                  dataKey="rest"
                  name="Everyone else"
                  stackId="share"
                  fill={REST}
                  isAnimationActive={false}
                />
              </BarChart>
            </ResponsiveContainer>
            <Typography.Paragraph type="secondary" style={{ margin: 0 }}>
              {money(mine)} of {money(all)} net revenue: {percent(revenueShare)} from{' '}
              {percent(customers)} of customers
              {index != null && ` (${decimal(index, 2)}× their share)`}.
            </Typography.Paragraph>
          </>
        )
      }}
    </Query>
  )
}
