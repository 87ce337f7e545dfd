import { useState } from 'react'
import { Card, Segmented, Space, Typography } from 'antd'
import { useQuery } from '@tanstack/react-query'
import { api, unwrap } from '../../api/client'
import type { components } from '../../api/schema'
import { EChart } from '../../ui/EChart'
import { Query } from '../../ui/states'
import { CustomersDrawer, type Drill } from './CustomersDrawer'
import { RfmMigration } from './RfmMigration'
import { count, decimal, money, when } from '../../ui/format'
import { useWorkspaceId } from '../../ui/workspace'

type Axis = 'frequency' | 'fm'
type Colour = 'customers' | 'average_revenue'
type Grid = components['schemas']['RfmGridAnswer']
type Cell = components['schemas']['RfmCell']

const AXIS_NAME: Record<Axis, string> = { frequency: 'Frequency score', fm: 'FM score' }

/** The RFM grid (recency against frequency, or against FM: the map the RFM segments are
 * cut from) and how customers moved between RFM segments from one date to another. */
export function RfmTab() {
  const [drill, setDrill] = useState<Drill | null>(null)
  return (
    <Space orientation="vertical" size="large" style={{ width: '100%' }}>
      <RfmGrid onDrill={setDrill} />
      <RfmMigration onDrill={setDrill} />
      <CustomersDrawer drill={drill} onClose={() => setDrill(null)} />
    </Space>
  )
}

function RfmGrid({ onDrill }: { onDrill: (drill: Drill) => void }) {
  const workspaceId = useWorkspaceId()
  const [axis, setAxis] = useState<Axis>('frequency')
  const [colour, setColour] = useState<Colour>('customers')
  const grid = useQuery({
    queryKey: ['analysis', workspaceId, 'rfm-grid', axis],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/analyses/rfm-grid', {
          params: { path: { workspace_id: workspaceId }, query: { axis } },
        }),
      ),
  })
  const drillInto = (cell: Cell) =>
    onDrill({
      title: `Recency ${cell.recency} · ${AXIS_NAME[axis].replace(' score', '')} ${cell.score}${cell.segment ? ` (${cell.segment})` : ''}`,
      detail: `Average revenue ${money(cell.average_revenue)}, ${decimal(cell.average_orders, 3)} orders on average.`,
      key: ['rfm-grid', axis, cell.recency, cell.score],
      load: (limit, offset) =>
        unwrap(
          api.GET('/api/v1/workspaces/{workspace_id}/analyses/rfm-grid/customers', {
            params: {
              path: { workspace_id: workspaceId },
              query: { axis, recency: cell.recency, score: cell.score, limit, offset },
            },
          }),
        ),
    })
  return (
    <Card
      title="RFM grid"
      variant="outlined"
      extra={
        <Space wrap>
          <Segmented
            aria-label="Grid"
            value={axis}
            onChange={(v) => setAxis(v as Axis)}
            options={[
              { value: 'frequency', label: 'Recency × frequency' },
              { value: 'fm', label: 'Recency × FM (segments)' },
            ]}
          />
          <Segmented
            aria-label="Colour by"
            value={colour}
            onChange={(v) => setColour(v as Colour)}
            options={[
              { value: 'customers', label: 'Customers' },
              { value: 'average_revenue', label: 'Avg revenue' },
            ]}
          />
        </Space>
      }
    >
      <Query query={grid} what="the RFM grid">
        {(data) =>
          data.customers === 0 ? (
            <Typography.Paragraph>
              No customer has ordered yet: the RFM grid scores customers with at least one order.
            </Typography.Paragraph>
          ) : (
            <>
              <Typography.Paragraph type="secondary">
                {count(data.customers)} customers with orders, scored 1 (worst) to {data.bins}{' '}
                (best) as of{' '}
                {when(data.as_of)}
                .
                {axis === 'fm'
                  ? ' FM is the mean of the frequency and monetary scores: each cell belongs to one RFM segment.'
                  : ''}{' '}
                Click a cell to see its customers.
              </Typography.Paragraph>
              <GridChart grid={data} colour={colour} onCell={drillInto} />
            </>
          )
        }
      </Query>
    </Card>
  )
}

function GridChart({
  grid,
  colour,
  onCell,
}: {
  grid: Grid
  colour: Colour
  onCell: (cell: Cell) => void
}) {
  const scores = Array.from({ length: grid.bins }, (_, i) => String(i + 1))
  // Every cell of the grid, the empty ones too, so the grid keeps its shape.
  const found = new Map(grid.cells.map((c) => [`${c.recency}:${c.score}`, c]))
  const cells = scores.flatMap((r) =>
    scores.map(
      (f): Cell =>
        found.get(`${r}:${f}`) ?? {
          recency: Number(r),
          score: Number(f),
          customers: 0,
          revenue: 0,
          average_revenue: 0,
          average_orders: 0,
          segment: null,
        },
    ),
  )
  const high = Math.max(1, ...cells.map((c) => c[colour]))
  const option = {
    tooltip: {
      formatter: (p: { dataIndex: number }) => {
        const c = cells[p.dataIndex]
        return (
          `<b>R ${c.recency} · ${grid.axis === 'fm' ? 'FM' : 'F'} ${c.score}</b>` +
          (c.segment ? ` — ${c.segment}` : '') +
          `<br/>${count(c.customers)} customers<br/>Revenue ${money(c.revenue)} ` +
          `(avg ${money(c.average_revenue)})<br/>${decimal(c.average_orders, 3)} orders on average`
        )
      },
    },
    grid: { left: 56, right: 16, top: 8, bottom: 48 },
    xAxis: {
      type: 'category',
      data: scores,
      name: 'Recency score (more recent →)',
      nameLocation: 'middle',
      nameGap: 28,
    },
    yAxis: {
      type: 'category',
      data: scores,
      name: `${AXIS_NAME[grid.axis as Axis]} (more →)`,
      nameLocation: 'middle',
      nameGap: 32,
    },
    visualMap: {
      dimension: 2,
      min: 0,
      max: high,
      show: false,
      inRange: { color: ['#f5f5f5', '#91caff', '#0958d9'] },
    },
    series: [
      {
        type: 'heatmap',
        data: cells.map((c) => [String(c.recency), String(c.score), c[colour]]),
        label: {
          show: true,
          lineHeight: 16,
          formatter: (p: { dataIndex: number }) => {
            const c = cells[p.dataIndex]
            const value = colour === 'customers' ? count(c.customers) : money(c.average_revenue)
            return c.segment ? `${value}\n{name|${c.segment}}` : value
          },
          rich: { name: { fontSize: 10, color: 'inherit' } },
        },
        itemStyle: { borderColor: '#fff', borderWidth: 2 },
        emphasis: { itemStyle: { borderColor: '#000', borderWidth: 1 } },
        cursor: 'pointer',
      },
    ],
  }
  return (
    <EChart
      label="RFM grid heatmap"
      option={option}
      height={Math.max(360, grid.bins * 72 + 60)}
      onClick={(p) => {
        const cell = cells[p.dataIndex]
        if (cell.customers > 0) onCell(cell)
      }}
    />
  )
}
