import { useState } from 'react'
import { Alert, Card, Col, Form, Input, Row as GridRow, Table } from 'antd'
import { useQuery } from '@tanstack/react-query'
import { api, unwrap } from '../../api/client'
import { EChart } from '../../ui/EChart'
import { segmentColor } from '../../ui/colors'
import { Nothing, Query } from '../../ui/states'
import type { Drill } from './CustomersDrawer'
import { count, percent, day } from '../../ui/format'
import { analysis, useSegments, useWorkspaceId } from '../../ui/workspace'
import { type Row, num, text } from './data'

const NONE = '(none)'
const SUMMARY = {
  at_start: 'At start',
  at_end: 'At end',
  stayed: 'Stayed',
  moved_in: 'Moved in',
  moved_out: 'Moved out',
}
const today = () => new Date().toISOString().slice(0, 10)

/** When RFM was scored: the days of the evaluations in an RFM segment's history. */
function useRfmScorings(workspaceId: number) {
  const segments = useSegments(workspaceId)
  const rfm = (segments.data?.items ?? [])
    .filter((s) => s.family === 'rfm')
    .sort((a, b) => (b.customers ?? 0) - (a.customers ?? 0))[0]
  const history = useQuery({
    queryKey: ['rfm-scorings', workspaceId, rfm?.id],
    enabled: rfm !== undefined,
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/segments/{segment_id}/history', {
          params: { path: { workspace_id: workspaceId, segment_id: rfm!.id } },
        }),
      ),
  })
  const days = [...new Set((history.data ?? []).map((h) => h.as_of.slice(0, 10)))].sort()
  const colourOf = new Map((segments.data?.items ?? []).map((s) => [s.name, segmentColor(s.id)]))
  return {
    ready: segments.isSuccess && (rfm === undefined || history.isSuccess),
    rfm,
    days,
    colourOf,
  }
}

/** Moves between RFM segments from one date to another: a from × to matrix whose cells
 * open the customers who made that move, and each segment's gains and losses. */
export function RfmMigration({ onDrill }: { onDrill: (drill: Drill) => void }) {
  const workspaceId = useWorkspaceId()
  const scorings = useRfmScorings(workspaceId)
  const [chosen, setChosen] = useState<{ from?: string; to?: string }>({})
  const from = chosen.from ?? scorings.days[0] ?? today()
  const to = chosen.to ?? today()
  const migration = useQuery({
    queryKey: ['analysis', workspaceId, 'rfm-migration', from, to],
    enabled: scorings.ready && scorings.rfm !== undefined && from <= to,
    queryFn: () =>
      analysis(
        api.GET('/api/v1/workspaces/{workspace_id}/analyses/rfm-migration', {
          params: { path: { workspace_id: workspaceId }, query: { from_date: from, to_date: to } },
        }),
      ),
  })

  const drillInto = (move: Row) => {
    const fromSegment = text(move, 'from_segment')
    const toSegment = text(move, 'to_segment')
    onDrill({
      title: fromSegment === toSegment ? `Stayed in ${fromSegment}` : `${fromSegment} → ${toSegment}`,
      detail: `RFM segment at the end of ${day(from)}, then at the end of ${day(to)}.`,
      key: ['rfm-migration', from, to, fromSegment, toSegment],
      load: (limit, offset) =>
        unwrap(
          api.GET('/api/v1/workspaces/{workspace_id}/analyses/rfm-migration/customers', {
            params: {
              path: { workspace_id: workspaceId },
              query: {
                from_date: from,
                to_date: to,
                from_segment: fromSegment,
                to_segment: toSegment,
                limit,
                offset,
              },
            },
          }),
        ),
    })
  }

  return (
    <Card title="RFM migration" variant="outlined">
      <Form layout="inline" style={{ marginBottom: 16, rowGap: 8 }}>
        <Form.Item label="From" htmlFor="rfm-from">
          <Input
            id="rfm-from"
            type="date"
            value={from}
            max={to}
            onChange={(e) => e.target.value && setChosen({ ...chosen, from: e.target.value })}
          />
        </Form.Item>
        <Form.Item label="To" htmlFor="rfm-to">
          <Input
            id="rfm-to"
            type="date"
            value={to}
            min={from}
            max={today()}
            onChange={(e) => e.target.value && setChosen({ ...chosen, to: e.target.value })}
          />
        </Form.Item>
      </Form>
      {scorings.ready && scorings.rfm === undefined ? (
        <Nothing>No RFM segments yet: score RFM first (Segments → RFM), then come back.</Nothing>
      ) : from > to ? (
        <Alert type="warning" showIcon title="The first date must not be after the second." />
      ) : (
        <>
          {scorings.days.length === 1 && (
            <Alert
              type="info"
              showIcon
              style={{ marginBottom: 16 }}
              title={`RFM has been scored once so far (${day(scorings.days[0])}), so nobody has moved yet.`}
              description="Score RFM again later, or for past dates with `strata rfm --as-of DAY`, to see customers move between segments."
            />
          )}
          <Query query={migration} what="the migration">
            {(answer) =>
              answer.tables.migration.rows.length === 0 ? (
                <Nothing>Nobody was in an RFM segment on either date.</Nothing>
              ) : (
                <GridRow gutter={[16, 16]}>
                  <Col xs={24} xl={14}>
                    <MoveMatrix
                      moves={answer.tables.migration.rows}
                      order={answer.tables.summary.rows.map((r) => text(r, 'segment'))}
                      colourOf={scorings.colourOf}
                      onMove={drillInto}
                    />
                  </Col>
                  <Col xs={24} xl={10}>
                    <Summary rows={answer.tables.summary.rows} />
                  </Col>
                </GridRow>
              )
            }
          </Query>
        </>
      )}
    </Card>
  )
}

/** From (rows) × to (columns): customers who made each move, coloured by the share of
 * the row's segment it is; the diagonal is who stayed. */
function MoveMatrix({
  moves,
  order,
  colourOf,
  onMove,
}: {
  moves: Row[]
  order: string[]
  colourOf: Map<string, string>
  onMove: (move: Row) => void
}) {
  const used = new Set(moves.flatMap((m) => [text(m, 'from_segment'), text(m, 'to_segment')]))
  const names = [...order, NONE].filter((n) => used.has(n))
  const label = {
    width: 130,
    overflow: 'truncate',
    formatter: (name: string) => `{s${names.indexOf(name)}|●} ${name}`,
    rich: Object.fromEntries(
      names.map((n, i) => [`s${i}`, { color: colourOf.get(n) ?? '#bfbfbf' }]),
    ),
  }
  const option = {
    tooltip: {
      formatter: (p: { dataIndex: number }) => {
        const m = moves[p.dataIndex]
        return (
          `<b>${text(m, 'from_segment')} → ${text(m, 'to_segment')}</b><br/>` +
          `${count(num(m, 'customers'))} customers (${percent(num(m, 'share_of_from'))} of ${text(m, 'from_segment')})`
        )
      },
    },
    grid: { left: 8, right: 8, top: 32, bottom: 8 },
    xAxis: {
      type: 'category',
      data: names,
      position: 'top',
      name: 'to →',
      nameLocation: 'start',
      axisLabel: { ...label, interval: 0, rotate: 30, width: 90 },
      splitArea: { show: true },
    },
    yAxis: {
      type: 'category',
      data: names,
      inverse: true,
      axisLabel: label,
      splitArea: { show: true },
    },
    visualMap: {
      dimension: 3,
      min: 0,
      max: 1,
      show: false,
      inRange: { color: ['#fff7e6', '#fa8c16'] },
    },
    series: [
      {
        type: 'heatmap',
        data: moves.map((m) => [
          names.indexOf(text(m, 'to_segment')),
          names.indexOf(text(m, 'from_segment')),
          num(m, 'customers'),
          num(m, 'share_of_from'),
        ]),
        label: {
          show: true,
          fontSize: 11,
          formatter: (p: { value: number[] }) => count(p.value[2]),
        },
        itemStyle: { borderColor: '#fff', borderWidth: 1 },
        cursor: 'pointer',
      },
    ],
  }
  return (
    <EChart
      label="RFM migration matrix"
      option={option}
      height={Math.max(320, names.length * 34 + 140)}
      onClick={(p) => onMove(moves[p.dataIndex])}
    />
  )
}

function Summary({ rows }: { rows: Row[] }) {
  const number = (key: keyof typeof SUMMARY) => ({
    title: SUMMARY[key],
    key,
    align: 'right' as const,
    render: (_: unknown, row: Row) => count(num(row, key)),
  })
  return (
    <Table
      size="small"
      rowKey={(row) => text(row, 'segment')}
      dataSource={rows}
      pagination={false}
      scroll={{ x: 'max-content' }}
      columns={[
        { title: 'Segment', key: 'segment', render: (_, row) => text(row, 'segment') },
        number('at_start'),
        number('at_end'),
        number('stayed'),
        number('moved_in'),
        number('moved_out'),
      ]}
    />
  )
}
