import { useState } from 'react'
import { Alert, Card, Form, Segmented, Space, Typography } from 'antd'
import { useQuery } from '@tanstack/react-query'
import { api, unwrap } from '../../api/client'
import { EChart } from '../../ui/EChart'
import { Nothing, Query } from '../../ui/states'
import { CustomersDrawer, type Drill } from './CustomersDrawer'
import { count, percent, day, month } from '../../ui/format'
import { analysis, useSegments, useWorkspaceId } from '../../ui/workspace'
import { type Row, num, text } from './data'
import { SegmentSelect } from './SegmentSelect'

type Period = 'week' | 'month' | 'quarter'
/** How far back each period looks: a heatmap of 100 weekly cohorts says nothing. */
const SPAN: Record<Period, { periods: number; words: string } | null> = {
  week: { periods: 26, words: 'the last 26 weeks' },
  month: { periods: 24, words: 'the last 24 months' },
  quarter: null,
}
const LETTER: Record<Period, string> = { week: 'W', month: 'M', quarter: 'Q' }

function since(period: Period): string | undefined {
  const span = SPAN[period]
  if (!span) return undefined
  const day = new Date()
  if (period === 'week') day.setUTCDate(day.getUTCDate() - 7 * span.periods)
  else day.setUTCMonth(day.getUTCMonth() - span.periods, 1)
  return day.toISOString().slice(0, 10)
}

/** Acquisition cohorts (customers by the period of their first order) and the share of
 * each that ordered again in every period after. */
export function CohortsTab() {
  const workspaceId = useWorkspaceId()
  const segments = useSegments(workspaceId)
  const [period, setPeriod] = useState<Period>('month')
  const [segment, setSegment] = useState<string | undefined>()
  const [drill, setDrill] = useState<Drill | null>(null)
  const from = since(period)
  const cohorts = useQuery({
    queryKey: ['analysis', workspaceId, 'cohorts', period, segment, from],
    queryFn: () =>
      analysis(
        api.GET('/api/v1/workspaces/{workspace_id}/analyses/cohorts', {
          params: {
            path: { workspace_id: workspaceId },
            query: { period, segment: segment ?? null, since: from ?? null },
          },
        }),
      ),
  })

  const drillInto = (cell: Row) => {
    const cohort = text(cell, 'cohort')
    const offset = num(cell, 'period_offset')
    setDrill({
      title: `${cohortName(cohort, period)} cohort, ${period} ${offset}`,
      detail:
        offset === 0
          ? `Customers whose first order was in this ${period}.`
          : `Customers of this cohort who ordered in its ${period} ${offset} (${shiftLabel(cohort, offset, period)}).`,
      key: ['cohorts', period, segment, cohort, offset],
      load: (limit, offset_) =>
        unwrap(
          api.GET('/api/v1/workspaces/{workspace_id}/analyses/cohorts/customers', {
            params: {
              path: { workspace_id: workspaceId },
              query: {
                period,
                segment: segment ?? null,
                cohort,
                period_offset: offset,
                limit,
                offset: offset_,
              },
            },
          }),
        ),
    })
  }

  return (
    <Space orientation="vertical" size="large" style={{ width: '100%' }}>
      <Form layout="inline" style={{ rowGap: 8 }}>
        <Form.Item label="Cohorts">
          <Segmented
            aria-label="Cohort period"
            value={period}
            onChange={(v) => setPeriod(v as Period)}
            options={[
              { value: 'week', label: 'Weekly' },
              { value: 'month', label: 'Monthly' },
              { value: 'quarter', label: 'Quarterly' },
            ]}
          />
        </Form.Item>
        <Form.Item label="Customers">
          <SegmentSelect
            segments={segments.data?.items ?? []}
            value={segment}
            onChange={setSegment}
          />
        </Form.Item>
      </Form>
      <Card title="Retention by acquisition cohort" variant="outlined">
        <Query query={cohorts} what="the cohorts">
          {(answer) => {
            const cells = answer.tables.cohorts.rows
            if (cells.length === 0)
              return (
                <Nothing>
                  No cohorts: {segment ? `no member of ${segment} has` : 'nobody has'} ordered
                  {SPAN[period] ? ` in ${SPAN[period]!.words}` : ''} yet.
                </Nothing>
              )
            const longest = Math.max(...cells.map((c) => num(c, 'period_offset')))
            return (
              <>
                {longest === 0 && (
                  <Alert
                    type="info"
                    showIcon
                    style={{ marginBottom: 16 }}
                    title={`Too little history: every cohort is still in its first ${period}.`}
                    description={`Retention shows once customers have had a ${period} after their first order; try a shorter period.`}
                  />
                )}
                <Typography.Paragraph type="secondary">
                  Each row is the customers whose first order was in that {period}
                  {SPAN[period] ? ` (cohorts of ${SPAN[period]!.words})` : ''}; each cell the share of
                  them who ordered {LETTER[period]}0, {LETTER[period]}1, … {period}s later. Cells with a
                  dashed border are the current, unfinished {period}. Click a cell to see its
                  customers.
                </Typography.Paragraph>
                <RetentionHeatmap cells={cells} period={period} onCell={drillInto} />
              </>
            )
          }}
        </Query>
      </Card>
      <CustomersDrawer drill={drill} onClose={() => setDrill(null)} />
    </Space>
  )
}

function cohortName(cohort: string, period: Period): string {
  if (period === 'week') return `Week of ${day(cohort)}`
  if (period === 'quarter') {
    const [y, m] = cohort.split('-').map(Number)
    return `Q${Math.floor((m - 1) / 3) + 1} ${y}`
  }
  return month(cohort)
}

function shiftLabel(cohort: string, offset: number, period: Period): string {
  const [y, m, d] = cohort.split('-').map(Number)
  const day = new Date(Date.UTC(y, m - 1, d))
  if (period === 'week') day.setUTCDate(day.getUTCDate() + 7 * offset)
  else day.setUTCMonth(day.getUTCMonth() + offset * (period === 'quarter' ? 3 : 1))
  return cohortName(day.toISOString().slice(0, 10), period)
}

/** Cohorts (rows, oldest first) × periods after (columns); wider than a phone, so it
 * scrolls inside its card. */
function RetentionHeatmap({
  cells,
  period,
  onCell,
}: {
  cells: Row[]
  period: Period
  onCell: (cell: Row) => void
}) {
  const cohorts = [...new Set(cells.map((c) => text(c, 'cohort')))]
  const sizeOf = new Map(cells.map((c) => [text(c, 'cohort'), num(c, 'cohort_size')]))
  const longest = Math.max(...cells.map((c) => num(c, 'period_offset')))
  const offsets = Array.from({ length: longest + 1 }, (_, k) => `${LETTER[period]}${k}`)
  // The colour scale leaves out period 0 (always 100 %), so later retention shows.
  const later = cells.filter((c) => num(c, 'period_offset') > 0)
  const high = Math.max(0.05, ...later.map((c) => num(c, 'retention')))
  const option = {
    tooltip: {
      formatter: (p: { dataIndex: number }) => {
        const c = cells[p.dataIndex]
        const cohort = text(c, 'cohort')
        return (
          `<b>${cohortName(cohort, period)}</b> (${count(num(c, 'cohort_size'))} customers)<br/>` +
          `${period} ${num(c, 'period_offset')}: ${shiftLabel(cohort, num(c, 'period_offset'), period)}` +
          `${c.complete ? '' : ' (so far)'}<br/>` +
          `${count(num(c, 'customers'))} ordered: ${percent(num(c, 'retention'))}`
        )
      },
    },
    grid: { left: 8, right: 8, top: 28, bottom: 8 },
    xAxis: { type: 'category', data: offsets, position: 'top', axisTick: { show: false } },
    yAxis: {
      type: 'category',
      data: cohorts,
      inverse: true,
      axisLabel: {
        formatter: (c: string) => `${cohortName(c, period)}  ${count(sizeOf.get(c) ?? 0)}`,
      },
    },
    visualMap: {
      dimension: 2,
      min: 0,
      max: high,
      show: false,
      inRange: { color: ['#f6ffed', '#95de64', '#237804'] },
    },
    series: [
      {
        type: 'heatmap',
        data: cells.map((c) => ({
          value: [num(c, 'period_offset'), cohorts.indexOf(text(c, 'cohort')), num(c, 'retention')],
          itemStyle: c.complete ? undefined : { borderType: 'dashed', borderColor: '#8c8c8c' },
        })),
        label: {
          show: true,
          fontSize: 10,
          formatter: (p: { value: number[] }) => percent(p.value[2], 0),
        },
        itemStyle: { borderColor: '#fff', borderWidth: 1 },
        cursor: 'pointer',
      },
    ],
  }
  return (
    <div style={{ overflowX: 'auto' }}>
      <div style={{ minWidth: offsets.length * 44 + 180 }}>
        <EChart
          label="Cohort retention heatmap"
          option={option}
          height={cohorts.length * 30 + 48}
          onClick={(p) => onCell(cells[p.dataIndex])}
        />
      </div>
    </div>
  )
}
