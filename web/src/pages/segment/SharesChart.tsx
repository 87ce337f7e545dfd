import { Bar, BarChart, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts'
import { segmentColor } from '../../ui/colors'
import { percent } from '../../ui/format'

const BASE = '#bfbfbf'

/** Shares of the segment and of the base side by side, one pair of bars per category. */
export function SharesChart<T extends { segment: number; base: number }>({
  rows,
  category,
  name,
  segmentId,
  note,
  onPick,
}: {
  rows: T[]
  category: string
  name: string
  segmentId: number
  /** More about a category, after the segment's share in the tooltip. */
  note?: (row: T) => string
  /** Drill down: called with the clicked category's row. */
  onPick?: (row: T) => void
}) {
  const click = onPick && ((bar: { payload?: unknown }) => onPick(bar.payload as T))
  return (
    <ResponsiveContainer width="100%" height={Math.max(180, rows.length * 34 + 60)}>
      <BarChart data={rows} layout="vertical" margin={{ left: 8, right: 24 }}>
        <XAxis type="number" tickFormatter={(v) => percent(v, 0)} />
        <YAxis type="category" dataKey={category} width={110} tick={{ fontSize: 12 }} />
        <Tooltip
          formatter={(v, series, item) =>
            series === name && note
              ? `${percent(Number(v))} (${note(item.payload as T)})`
              : percent(Number(v))
          }
        />
        <Legend />
        <Bar
          dataKey="segment"
          name={name}
          fill={segmentColor(segmentId)}
          isAnimationActive={false}
          cursor={click ? 'pointer' : undefined}
          onClick={click}
        />
        <Bar
          dataKey="base"
          name="All customers"
          fill={BASE}
          isAnimationActive={false}
          cursor={click ? 'pointer' : undefined}
          onClick={click}
        />
      </BarChart>
    </ResponsiveContainer>
  )
}
