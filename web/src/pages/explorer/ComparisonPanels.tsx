import { Card, Col, Grid, Row } from 'antd'
import {
  Bar,
  BarChart,
  CartesianGrid,
  LabelList,
  Rectangle,
  ReferenceLine,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from 'recharts'
import { segmentColor } from '../../ui/colors'
import { num, type Segment } from '../../ui/workspace'
import type { Comparison } from './data'
import { compact, count, decimal, money } from '../../ui/format'

type Panel = {
  title: string
  column: string
  format: (n: number | null) => string
  /** Averages get the whole base's value as a dashed line to read each bar against. */
  baseline: boolean
}

// The earlier dashboard's four panels (count, size, value, ICP score), with the figures
// every workspace has: how many, how much they bring, how much an order is worth, and
// how recently they bought.
const PANELS: Panel[] = [
  { title: 'Customers', column: 'customers', format: count, baseline: false },
  { title: 'Revenue', column: 'total_revenue', format: money, baseline: false },
  { title: 'Average order value', column: 'average_order_value', format: money, baseline: true },
  {
    title: 'Days since the last order',
    column: 'average_days_since_last_order',
    format: decimal,
    baseline: true,
  },
]

/** Four bar charts comparing the chosen segments; clicking a bar focuses its segment. */
export function ComparisonPanels({
  comparison,
  segments,
  focus,
  onFocus,
}: {
  comparison: Comparison
  segments: Segment[]
  focus: number
  onFocus: (id: number) => void
}) {
  return (
    <Row gutter={[16, 16]}>
      {PANELS.map((panel) => (
        <Col key={panel.column} xs={24} lg={12}>
          <Card size="small" title={`${panel.title} by segment`}>
            <PanelChart
              panel={panel}
              comparison={comparison}
              segments={segments}
              focus={focus}
              onFocus={onFocus}
            />
          </Card>
        </Col>
      ))}
    </Row>
  )
}

function PanelChart({
  panel,
  comparison,
  segments,
  focus,
  onFocus,
}: {
  panel: Panel
  comparison: Comparison
  segments: Segment[]
  focus: number
  onFocus: (id: number) => void
}) {
  const names = new Map(segments.map((s) => [s.id, s.name]))
  const data = comparison.ids.map((id, i) => ({
    id,
    name: names.get(id) ?? String(id),
    value: num(comparison.kpis[i], panel.column),
  }))
  const base = panel.baseline ? num(comparison.base, panel.column) : null
  // At phone width the names get less room, so the bars keep some.
  const wide = Grid.useBreakpoint().sm ?? true
  const nameWidth = wide ? 130 : 96
  const nameChars = wide ? 18 : 13
  return (
    <div role="img" aria-label={`${panel.title} by segment`}>
      <ResponsiveContainer width="100%" height={48 + 34 * data.length}>
        <BarChart layout="vertical" data={data} margin={{ top: 16, right: 64, left: 4, bottom: 0 }}>
          <CartesianGrid horizontal={false} strokeDasharray="3 3" />
          <XAxis type="number" tickFormatter={compact} fontSize={12} />
          <YAxis
            type="category"
            dataKey="name"
            width={nameWidth}
            fontSize={12}
            // Cut to fit, on one line: Recharts wraps a label at its spaces, not at no-break ones.
            tickFormatter={(name: string) =>
              (name.length > nameChars ? `${name.slice(0, nameChars - 1)}…` : name).replaceAll(
                ' ',
                '\u00a0',
              )
            }
          />
          <Tooltip
            formatter={(value) => [
              panel.format(typeof value === 'number' ? value : null),
              panel.title,
            ]}
            cursor={{ fill: 'rgba(0,0,0,0.04)' }}
          />
          <Bar
            dataKey="value"
            isAnimationActive={false}
            cursor="pointer"
            onClick={(item) => onFocus((item.payload as { id: number }).id)}
            shape={(props) => {
              const id = (props.payload as { id: number }).id
              return (
                <Rectangle
                  {...props}
                  fill={segmentColor(id)}
                  fillOpacity={id === focus ? 1 : 0.55}
                  stroke={id === focus ? '#262626' : 'none'}
                  strokeWidth={id === focus ? 1.5 : 0}
                />
              )
            }}
          >
            <LabelList
              dataKey="value"
              position="right"
              fontSize={12}
              formatter={(value) => panel.format(typeof value === 'number' ? value : null)}
            />
          </Bar>
          {base !== null && (
            <ReferenceLine
              x={base}
              ifOverflow="extendDomain"
              stroke="#595959"
              strokeDasharray="4 4"
              label={{
                value: `All customers ${panel.format(base)}`,
                position: 'top',
                fontSize: 11,
                fill: '#595959',
              }}
            />
          )}
        </BarChart>
      </ResponsiveContainer>
    </div>
  )
}
