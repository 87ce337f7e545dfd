import { useMemo, useState } from 'react'
import { Card, Col, Row as GridRow, Select, Space, Typography } from 'antd'
import { useQuery } from '@tanstack/react-query'
import { useSearchParams } from 'react-router-dom'
import { api, unwrap } from '../../api/client'
import { EChart } from '../../ui/EChart'
import { segmentColor } from '../../ui/colors'
import { Nothing, Query } from '../../ui/states'
import { CustomersDrawer, type Drill } from './CustomersDrawer'
import { count, percent } from '../../ui/format'
import { type Segment, analysis, useSegments, useWorkspaceId } from '../../ui/workspace'
import { type Row, num, text } from './data'

const MAX = 20
const KIND_ORDER = ['rule', 'rfm', 'prediction', 'cluster', 'tier', 'static']

/** A first comparison worth looking at: the largest segment of each kind (RFM segments or
 * clusters never share customers among themselves), then more rule segments, four in all. */
function defaultChoice(segments: Segment[]): number[] {
  const filled = [...segments]
    .filter((s) => (s.customers ?? 0) > 0)
    .sort((a, b) => (b.customers ?? 0) - (a.customers ?? 0))
  const chosen = KIND_ORDER.map((kind) => filled.find((s) => s.kind === kind)).filter(
    (s): s is Segment => s !== undefined,
  )
  for (const s of filled) if (s.kind === 'rule' && !chosen.includes(s)) chosen.push(s)
  return chosen.slice(0, 4).map((s) => s.id)
}

/** How far chosen segments share customers: a pairwise heatmap and an UpSet plot. */
export function OverlapTab() {
  const workspaceId = useWorkspaceId()
  const segments = useSegments(workspaceId)
  return (
    <Query query={segments} what="the segments">
      {(data) =>
        data.items.length < 2 ? (
          <Nothing>Overlap compares segments: create at least two first.</Nothing>
        ) : (
          <Overlap segments={data.items} />
        )
      }
    </Query>
  )
}

function Overlap({ segments }: { segments: Segment[] }) {
  const workspaceId = useWorkspaceId()
  const [search, setSearch] = useSearchParams()
  const [drill, setDrill] = useState<Drill | null>(null)
  const byId = new Map(segments.map((s) => [s.id, s]))
  // The choice lives in the address, so a comparison can be bookmarked and shared.
  const fromAddress = (search.get('segments') ?? '')
    .split(',')
    .map(Number)
    .filter((id) => byId.has(id))
  const chosen = fromAddress.length > 0 ? fromAddress : defaultChoice(segments)
  const names = chosen.map((id) => byId.get(id)!.name)
  const colourOf = new Map(chosen.map((id) => [byId.get(id)!.name, segmentColor(id)]))

  const overlap = useQuery({
    queryKey: ['analysis', workspaceId, 'overlap', names],
    enabled: names.length >= 2,
    queryFn: () =>
      analysis(
        api.GET('/api/v1/workspaces/{workspace_id}/analyses/overlap', {
          params: { path: { workspace_id: workspaceId }, query: { segments: names } },
        }),
      ),
  })

  const open = (title: string, detail: string, inSegments: string[], excluding: string[] = []) =>
    setDrill({
      title,
      detail,
      key: ['overlap', inSegments, excluding],
      load: (limit, offset) =>
        unwrap(
          api.GET('/api/v1/workspaces/{workspace_id}/analyses/overlap/customers', {
            params: {
              path: { workspace_id: workspaceId },
              query: { segments: inSegments, excluding, limit, offset },
            },
          }),
        ),
    })

  return (
    <Space orientation="vertical" size="large" style={{ width: '100%' }}>
      <Select
        mode="multiple"
        aria-label="Segments to compare"
        placeholder="Choose 2 to 20 segments"
        value={chosen}
        maxCount={MAX}
        showSearch={{ optionFilterProp: 'label' }}
        style={{ width: '100%' }}
        onChange={(ids: number[]) => setSearch({ segments: ids.join(',') }, { replace: true })}
        options={segments.map((s) => ({
          value: s.id,
          label: s.name,
          title: `${s.name}: ${count(s.customers ?? 0)} customers`,
        }))}
      />
      <Typography.Text type="secondary">
        Membership as of now. Click a cell or a bar to see the customers behind it.
      </Typography.Text>
      {names.length < 2 ? (
        <Nothing>Choose at least two segments to see how they overlap.</Nothing>
      ) : (
        <Query query={overlap} what="the overlap">
          {(answer) => {
            const matrix = answer.tables.matrix.rows
            const combinations = answer.tables.intersections.rows
            return (
              <GridRow gutter={[16, 16]}>
                <Col xs={24} xl={12}>
                  <Card title="Shared customers, pair by pair" variant="outlined">
                    <PairHeatmap
                      names={names}
                      colourOf={colourOf}
                      matrix={matrix}
                      onCell={(row) => {
                        const a = text(row, 'segment_a')
                        const b = text(row, 'segment_b')
                        const pair = a === b ? [a] : [a, b]
                        open(
                          a === b ? a : `${a} & ${b}`,
                          a === b
                            ? 'Every member of the segment.'
                            : `In both, whatever other segments they are in: ${percent(num(row, 'share_of_a'))} of ${a}, ${percent(num(row, 'share_of_b'))} of ${b}.`,
                          pair,
                        )
                      }}
                    />
                  </Card>
                </Col>
                <Col xs={24} xl={12}>
                  <Card title="Exact combinations (UpSet)" variant="outlined">
                    {combinations.length === 0 ? (
                      <Nothing>None of these segments has members now.</Nothing>
                    ) : (
                      <UpSet
                        names={names}
                        colourOf={colourOf}
                        sizes={answer.tables.sizes.rows}
                        combinations={combinations}
                        onBar={(row) => {
                          const members = (row.members as string[]) ?? []
                          open(
                            text(row, 'combination'),
                            'In exactly these of the chosen segments, and in none of the others.',
                            members,
                            names.filter((n) => !members.includes(n)),
                          )
                        }}
                      />
                    )}
                  </Card>
                </Col>
              </GridRow>
            )
          }}
        </Query>
      )}
      <CustomersDrawer drill={drill} onClose={() => setDrill(null)} />
    </Space>
  )
}

/** Segment × segment: each cell the customers in both, coloured by the share of the row's
 * segment they are (the diagonal is each segment's size). */
function PairHeatmap({
  names,
  colourOf,
  matrix,
  onCell,
}: {
  names: string[]
  colourOf: Map<string, string>
  matrix: Row[]
  onCell: (row: Row) => void
}) {
  const option = useMemo(
    () => ({
      tooltip: {
        formatter: (p: { dataIndex: number }) => {
          const row = matrix[p.dataIndex]
          const a = text(row, 'segment_a')
          const b = text(row, 'segment_b')
          if (a === b) return `<b>${a}</b><br/>${count(num(row, 'both'))} customers`
          return (
            `<b>${a} & ${b}</b><br/>${count(num(row, 'both'))} customers in both<br/>` +
            `${percent(num(row, 'share_of_a'))} of ${a}, ${percent(num(row, 'share_of_b'))} of ${b}<br/>` +
            `Jaccard ${num(row, 'jaccard').toFixed(2)}`
          )
        },
      },
      grid: { left: 8, right: 8, top: 8, bottom: 8 },
      xAxis: {
        type: 'category',
        data: names,
        axisLabel: {
          interval: 0,
          rotate: names.length > 3 ? 30 : 0,
          width: 110,
          overflow: 'truncate',
        },
      },
      yAxis: {
        type: 'category',
        data: names,
        inverse: true,
        axisLabel: {
          width: 140,
          overflow: 'truncate',
          // A dot in each segment's own colour, as on every other chart.
          formatter: (name: string) => `{s${names.indexOf(name)}|●} ${name}`,
          rich: Object.fromEntries(names.map((n, i) => [`s${i}`, { color: colourOf.get(n) }])),
        },
      },
      visualMap: {
        dimension: 3,
        min: 0,
        max: 1,
        show: false,
        inRange: { color: ['#f0f5ff', '#1677ff'] },
      },
      series: [
        {
          type: 'heatmap',
          data: matrix.map((row) => [
            names.indexOf(text(row, 'segment_b')),
            names.indexOf(text(row, 'segment_a')),
            num(row, 'both'),
            num(row, 'share_of_a'),
          ]),
          label: { show: true, formatter: (p: { value: number[] }) => count(p.value[2]) },
          itemStyle: { borderColor: '#fff', borderWidth: 2 },
          emphasis: { itemStyle: { borderColor: '#000', borderWidth: 1 } },
          cursor: 'pointer',
        },
      ],
    }),
    [names, matrix, colourOf],
  )
  return (
    <EChart
      label="Pairwise overlap heatmap"
      option={option}
      height={Math.max(280, names.length * 44 + 100)}
      onClick={(p) => onCell(matrix[p.dataIndex])}
    />
  )
}

/** Intersection sizes as bars, with the dot matrix of which segments each is made of
 * below: one chart with two grids sharing the combinations as their x axis. */
function UpSet({
  names,
  colourOf,
  sizes,
  combinations,
  onBar,
}: {
  names: string[]
  colourOf: Map<string, string>
  sizes: Row[]
  combinations: Row[]
  onBar: (row: Row) => void
}) {
  const shown = combinations.slice(0, 20)
  const sizeOf = new Map(sizes.map((r) => [text(r, 'segment'), num(r, 'customers')]))
  const matrixHeight = names.length * 28
  const keys = shown.map((_, i) => String(i))
  // Both grids share the combinations as x; the bars' labels and the dots name them.
  const hidden = {
    type: 'category',
    data: keys,
    axisLabel: { show: false },
    axisTick: { show: false },
  }
  const option = {
    tooltip: {
      trigger: 'item',
      formatter: (p: { dataIndex: number; seriesType: string; seriesIndex: number }) => {
        const row = shown[p.seriesType === 'bar' ? p.dataIndex : p.seriesIndex - 2]
        if (!row) return ''
        return `<b>${text(row, 'combination')}</b><br/>${count(num(row, 'customers'))} customers in exactly these`
      },
    },
    grid: [
      { left: 150, right: 12, top: 24, height: 200 },
      { left: 150, right: 12, top: 236, height: matrixHeight },
    ],
    xAxis: [
      { ...hidden, gridIndex: 0 },
      { ...hidden, gridIndex: 1, axisLine: { show: false } },
    ],
    yAxis: [
      { type: 'value', gridIndex: 0, name: 'Customers', nameTextStyle: { align: 'right' } },
      {
        type: 'category',
        gridIndex: 1,
        data: names,
        inverse: true,
        axisTick: { show: false },
        axisLine: { show: false },
        axisLabel: {
          width: 140,
          overflow: 'truncate',
          formatter: (name: string) => `${name} (${count(sizeOf.get(name) ?? 0)})`,
        },
        splitArea: { show: true },
      },
    ],
    series: [
      {
        type: 'bar',
        xAxisIndex: 0,
        yAxisIndex: 0,
        data: shown.map((r) => num(r, 'customers')),
        itemStyle: { color: '#434343' },
        label: {
          show: true,
          position: 'top',
          fontSize: 11,
          formatter: (p: { value: number }) => count(p.value),
        },
        cursor: 'pointer',
      },
      {
        // Every cell of the matrix as a pale dot; the combinations' own dots cover theirs.
        type: 'line',
        xAxisIndex: 1,
        yAxisIndex: 1,
        data: keys.flatMap((k) => names.map((n) => [k, n])),
        lineStyle: { width: 0 },
        symbol: 'circle',
        symbolSize: 11,
        showAllSymbol: true,
        itemStyle: { color: '#e8e8e8' },
        silent: true,
      },
      ...shown.map((row, i) => ({
        type: 'line',
        xAxisIndex: 1,
        yAxisIndex: 1,
        data: ((row.members as string[]) ?? []).map((n) => ({
          value: [String(i), n],
          itemStyle: { color: colourOf.get(n) },
        })),
        lineStyle: { color: '#434343', width: 2 },
        symbol: 'circle',
        symbolSize: 12,
        showAllSymbol: true,
        cursor: 'pointer',
      })),
    ],
  }
  return (
    <>
      {combinations.length > shown.length && (
        <Typography.Text type="secondary">
          The {shown.length} largest of {combinations.length} combinations.
        </Typography.Text>
      )}
      <EChart
        label="UpSet plot of exact combinations"
        option={option}
        height={236 + matrixHeight + 16}
        onClick={(p) =>
          onBar(shown[p.seriesType === 'bar' ? p.dataIndex : p.seriesIndex - 2])
        }
      />
    </>
  )
}
