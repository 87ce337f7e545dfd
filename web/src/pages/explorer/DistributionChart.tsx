import { useMemo } from 'react'
import { EChart } from '../../ui/EChart'
import { segmentColor } from '../../ui/colors'
import { num, type Row, type Segment } from '../../ui/workspace'
import type { Comparison } from './data'
import { count, figure } from '../../ui/format'
import { fieldLabel } from './fields'

const BASE = '#8c8c8c'

/** `#1677ff` → `rgba(22,119,255,0.2)`: a box's light fill under its full-colour outline. */
function tint(hex: string, alpha = 0.2): string {
  const n = parseInt(hex.slice(1), 16)
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${alpha})`
}

function tooltip(name: string, row: Row | undefined): string {
  const lines = [
    ['Customers with a value', count(num(row, 'count'))],
    ['Lowest', figure(num(row, 'min'))],
    ['Lower quartile', figure(num(row, 'q1'))],
    ['Median', figure(num(row, 'median'))],
    ['Upper quartile', figure(num(row, 'q3'))],
    ['Highest', figure(num(row, 'max'))],
    ['Mean', figure(num(row, 'mean'))],
    ['Beyond the whiskers', count(num(row, 'outliers'))],
  ]
  return `<b>${name}</b><br/>${lines.map(([k, v]) => `${k}: ${v}`).join('<br/>')}`
}

/** How the metric spreads in each segment (Tukey box plot), the whole base first in grey;
 * clicking a box focuses its segment. */
export function DistributionChart({
  comparison,
  segments,
  onFocus,
}: {
  comparison: Comparison
  segments: Segment[]
  onFocus: (id: number) => void
}) {
  const option = useMemo(() => {
    const names = new Map(segments.map((s) => [s.id, s.name]))
    const rows = [
      { name: 'All customers', color: BASE, row: comparison.baseSpread },
      ...comparison.ids.map((id, i) => ({
        name: names.get(id) ?? String(id),
        color: segmentColor(id),
        row: comparison.spread[i],
      })),
    ]
    // Whiskers, not min and max: the extremes are in the tooltip, and a few very large
    // values would otherwise squash every box to a line.
    const box = (row: Row | undefined) =>
      ['lower_whisker', 'q1', 'median', 'q3', 'upper_whisker'].map((c) => num(row, c))
    return {
      grid: {
        left: 8,
        right: 24,
        top: 16,
        bottom: 28,
        outerBoundsMode: 'same',
        outerBoundsContain: 'axisLabel',
      },
      tooltip: {
        trigger: 'item',
        formatter: ({ dataIndex }: { dataIndex: number }) =>
          tooltip(rows[dataIndex].name, rows[dataIndex].row),
      },
      xAxis: {
        type: 'value',
        name: fieldLabel(comparison.metric),
        nameLocation: 'middle',
        nameGap: 24,
        splitLine: { lineStyle: { type: 'dashed' } },
      },
      yAxis: {
        type: 'category',
        inverse: true,
        data: rows.map((r) => r.name),
        axisLabel: { width: 130, overflow: 'truncate' },
      },
      series: [
        {
          type: 'boxplot',
          boxWidth: [8, 22],
          data: rows.map((r) => ({
            value: box(r.row),
            itemStyle: { color: tint(r.color), borderColor: r.color, borderWidth: 1.5 },
          })),
        },
      ],
    }
  }, [comparison, segments])
  return (
    <EChart
      option={option}
      height={64 + 40 * (comparison.ids.length + 1)}
      label={`Distribution of ${fieldLabel(comparison.metric)} by segment`}
      onClick={(p) => {
        if (p.dataIndex > 0) onFocus(comparison.ids[p.dataIndex - 1])
      }}
    />
  )
}
