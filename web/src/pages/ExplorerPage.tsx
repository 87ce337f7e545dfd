import { Button, Card, Space, Tabs, Typography } from 'antd'
import { useNavigate, useSearchParams } from 'react-router-dom'
import { Failed, Loading, Nothing } from '../ui/states'
import { ComparisonPanels } from './explorer/ComparisonPanels'
import { useSegments, useWorkspaceId, type Segment } from '../ui/workspace'
import { useCompare } from './explorer/data'
import { DistributionChart } from './explorer/DistributionChart'
import { FieldSelect } from './explorer/FieldSelect'
import { FocusPanel } from './explorer/FocusPanel'
import { FocusSwitcher, SegmentSelector } from './explorer/SegmentPicker'
import { SummaryTable } from './explorer/SummaryTable'
import { TierSettings } from './explorer/TierSettings'

const DEFAULT_METRIC = 'total_revenue'

/** The view lives in the address (?segments=1,2&focus=2&metric=…&tab=tiers), so a reload
 * or a shared link opens the same comparison. */
function useView(segments: Segment[] | undefined) {
  const [params] = useSearchParams()
  const navigate = useNavigate()
  const known = new Set(segments?.map((s) => s.id))
  const ids = (params.get('segments') ?? '')
    .split(',')
    .map(Number)
    .filter((id) => id > 0 && (!segments || known.has(id)))
  const asked = Number(params.get('focus'))
  const focus = ids.includes(asked) ? asked : (ids[0] ?? null)
  const update = (changes: Record<string, string | null>) => {
    const next = new URLSearchParams(params)
    for (const [key, value] of Object.entries(changes))
      if (value === null || value === '') next.delete(key)
      else next.set(key, value)
    // Commas left as they are: ?segments=1,2 reads better than 1%2C2.
    navigate({ search: next.toString().replaceAll('%2C', ',') }, { replace: true })
  }
  const choose = (chosen: number[]) => ({
    segments: chosen.join(','),
    // The focus stays on its segment while that one is still chosen.
    focus: chosen.includes(focus ?? -1) ? String(focus) : chosen[0] ? String(chosen[0]) : null,
  })
  return {
    ids,
    focus,
    metric: params.get('metric') || DEFAULT_METRIC,
    tab: params.get('tab') === 'tiers' ? 'tiers' : 'compare',
    choose: (chosen: number[]) => update(choose(chosen)),
    /** Compare these segments, on the comparison tab. */
    compare: (chosen: number[]) => update({ ...choose(chosen), tab: null }),
    setFocus: (id: number) => update({ focus: String(id) }),
    setMetric: (metric: string) => update({ metric: metric === DEFAULT_METRIC ? null : metric }),
    setTab: (tab: string) => update({ tab: tab === 'tiers' ? 'tiers' : null }),
  }
}

/** Explorer: choose segments, compare them on four panels, a box plot and a summary
 * table, focus one for its metric cards and recommendations, and tune tier thresholds. */
export default function ExplorerPage() {
  const workspaceId = useWorkspaceId()
  const segments = useSegments(workspaceId)
  const view = useView(segments.data?.items)

  if (segments.isError) return <Failed error={segments.error} />
  if (segments.isPending) return <Loading what="the segments" />
  const all = segments.data.items
  return (
    <Space orientation="vertical" size="middle" style={{ width: '100%' }}>
      <Typography.Title level={3} style={{ margin: 0 }}>
        Explorer
      </Typography.Title>
      <Tabs
        activeKey={view.tab}
        onChange={view.setTab}
        items={[
          {
            key: 'compare',
            label: 'Compare segments',
            children: <Comparison workspaceId={workspaceId} segments={all} view={view} />,
          },
          {
            key: 'tiers',
            label: 'Tier thresholds',
            children: (
              <TierSettings
                workspaceId={workspaceId}
                segments={all}
                onCompare={view.compare}
              />
            ),
          },
        ]}
      />
    </Space>
  )
}

function Comparison({
  workspaceId,
  segments,
  view,
}: {
  workspaceId: number
  segments: Segment[]
  view: ReturnType<typeof useView>
}) {
  const comparison = useCompare(workspaceId, view.ids, view.metric)
  const byId = new Map(segments.map((s) => [s.id, s]))
  const chosen = view.ids.map((id) => byId.get(id)!)
  const focused = view.focus === null ? null : byId.get(view.focus)!
  // The charts draw the answer they were given, which may still be the previous choice
  // while the new one loads.
  const data = comparison.data
  const csv =
    `/api/v1/workspaces/${workspaceId}/analyses/compare?format=csv&table=kpis&metric=` +
    `${encodeURIComponent(view.metric)}&${view.ids.map((id) => `segments=${id}`).join('&')}`
  return (
    <Space orientation="vertical" size="large" style={{ width: '100%' }}>
      <Card size="small">
        <Space orientation="vertical" size="middle" style={{ width: '100%' }}>
          <SegmentSelector segments={segments} chosen={view.ids} onChoose={view.choose} />
          {focused && (
            <div style={{ display: 'flex', alignItems: 'center', gap: 8, minWidth: 0 }}>
              <Typography.Text type="secondary">Focus:</Typography.Text>
              <FocusSwitcher segments={chosen} focus={focused.id} onFocus={view.setFocus} />
            </div>
          )}
        </Space>
      </Card>
      {view.ids.length === 0 ? (
        <Nothing>
          Choose segments to compare above, or a whole family: the RFM segments, a tier set, the
          clusters.
        </Nothing>
      ) : comparison.isError ? (
        <Space orientation="vertical" style={{ width: '100%' }}>
          <Failed error={comparison.error} />
          {view.metric !== DEFAULT_METRIC && (
            <Button onClick={() => view.setMetric(DEFAULT_METRIC)}>
              Compare on revenue instead
            </Button>
          )}
        </Space>
      ) : !data ? (
        <Loading what="the comparison" />
      ) : (
        <>
          {focused && (
            <FocusPanel
              workspaceId={workspaceId}
              segment={focused}
              row={data.kpis[data.ids.indexOf(focused.id)]}
              base={data.base}
            />
          )}
          <ComparisonPanels
            comparison={data}
            segments={segments}
            focus={view.focus ?? -1}
            onFocus={view.setFocus}
          />
          <Card size="small" title="Distribution by segment">
            <Space wrap>
              <label htmlFor="distribution-metric">Metric</label>
              <FieldSelect
                id="distribution-metric"
                value={view.metric}
                onChange={view.setMetric}
                width={280}
              />
            </Space>
            <DistributionChart comparison={data} segments={segments} onFocus={view.setFocus} />
            <Typography.Text type="secondary" style={{ fontSize: 12 }}>
              Each box spans the middle half of the segment’s customers (lower to upper quartile)
              with the median inside; the whiskers reach the furthest values within 1.5 × that
              span. Hover a box for the lowest, highest and mean.
            </Typography.Text>
          </Card>
          <Card
            size="small"
            title="Summary"
            extra={
              <Button size="small" href={csv} download>
                Download CSV
              </Button>
            }
          >
            <SummaryTable
              workspaceId={workspaceId}
              comparison={data}
              segments={segments}
              focus={view.focus ?? -1}
              onFocus={view.setFocus}
            />
          </Card>
        </>
      )}
    </Space>
  )
}
