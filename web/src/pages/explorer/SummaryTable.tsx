import { Table, Typography } from 'antd'
import type { ColumnsType } from 'antd/es/table'
import { Link } from 'react-router-dom'
import { num, type Row, type Segment } from '../../ui/workspace'
import type { Comparison } from './data'
import { count, decimal, figure, money, percent } from '../../ui/format'
import { fieldLabel } from './fields'
import { Swatch } from '../../ui/Swatch'

type Line = { key: string; id: number | null; name: string; row: Row | undefined }

const figureColumn = (
  title: string,
  column: string,
  format: (n: number | null) => string,
): ColumnsType<Line>[number] => ({
  title,
  key: column,
  align: 'right',
  render: (_, line) => format(num(line.row, column)),
  sorter: (a, b) => (num(a.row, column) ?? -Infinity) - (num(b.row, column) ?? -Infinity),
})

/** The compare route's KPIs, one row per chosen segment and the whole base first; a row's
 * click focuses its segment. */
export function SummaryTable({
  workspaceId,
  comparison,
  segments,
  focus,
  onFocus,
}: {
  workspaceId: number
  comparison: Comparison
  segments: Segment[]
  focus: number
  onFocus: (id: number) => void
}) {
  const names = new Map(segments.map((s) => [s.id, s.name]))
  const lines: Line[] = [
    { key: 'base', id: null, name: 'All customers', row: comparison.base },
    ...comparison.ids.map((id, i) => ({
      key: String(id),
      id,
      name: names.get(id) ?? String(id),
      row: comparison.kpis[i],
    })),
  ]
  const withIcp = lines.some((l) => num(l.row, 'average_icp_score') !== null)
  const columns: ColumnsType<Line> = [
    {
      title: 'Segment',
      key: 'segment',
      fixed: 'left',
      render: (_, line) =>
        line.id === null ? (
          <Typography.Text type="secondary">{line.name}</Typography.Text>
        ) : (
          <span style={{ display: 'inline-flex', alignItems: 'center' }}>
            <Swatch id={line.id} gap={6} />
            <Link to={`/w/${workspaceId}/segments/${line.id}`} onClick={(e) => e.stopPropagation()}>
              {line.name}
            </Link>
          </span>
        ),
    },
    figureColumn('Customers', 'customers', count),
    figureColumn('Share of base', 'share_of_customers', percent),
    figureColumn('Revenue', 'total_revenue', money),
    figureColumn('Revenue per customer', 'revenue_per_customer', money),
    figureColumn('Average order value', 'average_order_value', money),
    figureColumn('Orders per customer', 'orders_per_customer', money),
    figureColumn('Days since last order', 'average_days_since_last_order', decimal),
    figureColumn('High-value rate', 'high_value_rate', percent),
    figureColumn(
      `Average ${fieldLabel(comparison.metric).toLowerCase()}`,
      'average_metric',
      figure,
    ),
    ...(withIcp ? [figureColumn('Average ICP score', 'average_icp_score', decimal)] : []),
  ]
  return (
    <div role="region" aria-label="Segment summary">
      <Table<Line>
        size="small"
        rowKey="key"
        dataSource={lines}
        columns={columns}
        pagination={false}
        // Narrower than that, the table scrolls inside its card; wider, headers may wrap.
        scroll={{ x: 1100 }}
        rowClassName={(line) => (line.id === focus ? 'ant-table-row-selected' : '')}
        onRow={(line) => ({
          onClick: () => line.id !== null && onFocus(line.id),
          style: { cursor: line.id === null ? 'default' : 'pointer' },
        })}
      />
    </div>
  )
}
