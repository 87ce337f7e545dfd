import { useEffect, useRef, useState } from 'react'
import { Alert, Button, Flex, Input, Select, Table, Tag, Typography } from 'antd'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { Link, useNavigate } from 'react-router-dom'
import { Line, LineChart, Tooltip, YAxis } from 'recharts'
import { api, unwrap } from '../api/client'
import { segmentColor } from '../ui/colors'
import { Failed } from '../ui/states'
import { count, when } from '../ui/format'
import { type Job, type Segment, useSegments, useWorkspaceId } from '../ui/workspace'


const KINDS = ['rule', 'static', 'rfm', 'tier', 'cluster', 'prediction']
const TREND_DAYS = 30

/** Every segment of the workspace: name, kind, size with its 30-day trend, last refreshed
 * and status (waiting for approval, refreshing…), with search and a kind filter. */
export default function SegmentsPage() {
  const workspaceId = useWorkspaceId()
  const navigate = useNavigate()
  const [search, setSearch] = useState('')
  const [kind, setKind] = useState<string | undefined>()
  const path = { workspace_id: workspaceId }
  const segments = useSegments(workspaceId)
  // One answer with every segment's daily sizes, rather than one history per row.
  const trends = useQuery({
    queryKey: ['segments', workspaceId, 'trends', TREND_DAYS],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/segments/trends', {
          params: { path, query: { days: TREND_DAYS } },
        }),
      ),
  })
  const refreshing = useRefreshing(workspaceId)
  const refreshAll = useMutation({
    mutationFn: () =>
      unwrap(api.POST('/api/v1/workspaces/{workspace_id}/segments/refresh', { params: { path }, body: {} })),
    onSuccess: () => refreshing.refetch(),
  })

  if (segments.isError) return <Failed error={segments.error} />
  const needle = search.trim().toLowerCase()
  const rows = (segments.data?.items ?? []).filter(
    (s) => (!kind || s.kind === kind) && s.name.toLowerCase().includes(needle),
  )
  const sizes = new Map((trends.data?.segments ?? []).map((t) => [t.segment_id, t.sizes]))
  const days = trends.data?.days ?? []
  return (
    <Flex vertical gap={16} style={{ width: '100%' }}>
      <Flex justify="space-between" align="center" wrap gap={8}>
        <Typography.Title level={3} style={{ margin: 0 }}>
          Segments
        </Typography.Title>
        <Flex gap={8} wrap>
          <Button onClick={() => refreshAll.mutate()} loading={refreshAll.isPending} disabled={refreshing.all}>
            Refresh all
          </Button>
          <Button type="primary" onClick={() => navigate(`/w/${workspaceId}/segments/new`)}>
            New segment
          </Button>
        </Flex>
      </Flex>
      {refreshAll.isError && <Alert type="error" showIcon title={refreshAll.error.message} closable />}
      {trends.isError && (
        <Alert type="warning" showIcon title={`The 30-day trends could not be loaded: ${trends.error.message}`} />
      )}
      <Flex gap={8} wrap>
        <Input.Search
          aria-label="Search segments"
          placeholder="Search by name"
          allowClear
          onChange={(e) => setSearch(e.target.value)}
          style={{ width: 260, maxWidth: '100%' }}
        />
        <Select
          aria-label="Kind"
          placeholder="Any kind"
          allowClear
          style={{ width: 160 }}
          options={KINDS.map((k) => ({ value: k, label: k }))}
          onChange={setKind}
        />
      </Flex>
      <Table
        rowKey="id"
        loading={segments.isPending}
        dataSource={rows}
        locale={{
          emptyText:
            segments.data?.total === 0
              ? 'No segments yet: import data, then run the initial segmentation or build one with “New segment”.'
              : 'No segment matches this search.',
        }}
        pagination={{ pageSize: 25, hideOnSinglePage: true }}
        scroll={{ x: 'max-content' }}
        columns={[
          {
            title: 'Name',
            dataIndex: 'name',
            sorter: (a, b) => a.name.localeCompare(b.name),
            render: (name: string, s) => (
              <Flex vertical style={{ maxWidth: 320 }}>
                <Link to={`/w/${workspaceId}/segments/${s.id}`}>{name}</Link>
                {s.description && (
                  <Typography.Text type="secondary" ellipsis={{ tooltip: s.description }} style={{ fontSize: 12 }}>
                    {s.description}
                  </Typography.Text>
                )}
              </Flex>
            ),
          },
          {
            title: 'Kind',
            dataIndex: 'kind',
            render: (k: string, s) => <Tag>{s.family && s.family !== k ? s.family : k}</Tag>,
          },
          {
            title: 'Customers',
            dataIndex: 'customers',
            align: 'right',
            sorter: (a, b) => (a.customers ?? 0) - (b.customers ?? 0),
            render: (n: number | null) => count(n),
          },
          {
            title: `Last ${TREND_DAYS} days`,
            key: 'trend',
            render: (_, s) => <Trend segmentId={s.id} name={s.name} sizes={sizes.get(s.id)} days={days} />,
          },
          {
            title: 'Last refreshed',
            dataIndex: 'refreshed_at',
            sorter: (a, b) => (a.refreshed_at ?? '').localeCompare(b.refreshed_at ?? ''),
            render: (t: string | null) => (t ? when(t) : 'never'),
          },
          {
            title: 'Status',
            key: 'status',
            render: (_, s) => <Status segment={s} refreshing={refreshing.has(s)} />,
          },
          {
            title: '',
            key: 'edit',
            render: (_, s) =>
              s.kind === 'rule' ? (
                <Link to={`/w/${workspaceId}/segments/${s.id}/edit`} aria-label={`Edit ${s.name}`}>
                  Edit
                </Link>
              ) : null,
          },
        ]}
      />
    </Flex>
  )
}

function Status({ segment, refreshing }: { segment: Segment; refreshing: boolean }) {
  if (refreshing) return <Tag color="processing">refreshing…</Tag>
  if (segment.review_status === 'draft') return <Tag color="orange">waiting for approval</Tag>
  if (segment.refreshed_at === null && segment.kind !== 'static') return <Tag>not evaluated yet</Tag>
  return <Tag color="green">live</Tag>
}

/** The size over the last days as a tiny line in the segment's colour, with the change;
 * a segment younger than the window starts where it was made. */
function Trend({
  segmentId,
  name,
  sizes,
  days,
}: {
  segmentId: number
  name: string
  sizes: (number | null)[] | undefined
  days: string[]
}) {
  const known = (sizes ?? []).flatMap((members, i) => (members === null ? [] : [{ day: days[i], members }]))
  if (known.length === 0) return <Typography.Text type="secondary">–</Typography.Text>
  const first = known[0]
  const last = known[known.length - 1]
  const change = last.members - first.members
  const since = new Date(`${first.day}T00:00:00Z`).toLocaleDateString('en-US', { month: 'short', day: 'numeric', timeZone: 'UTC' })
  // A segment made today has one point: drawn flat, so the row still shows its level.
  const data = known.length === 1 ? [first, last] : known
  const label = `${name}: ${count(first.members)} to ${count(last.members)} customers since ${since}`
  return (
    <Flex align="center" gap={8}>
      <div role="img" aria-label={label} title={label} className="sparkline">
        <LineChart width={110} height={30} data={data} margin={{ top: 3, right: 2, bottom: 3, left: 2 }}>
          <YAxis hide domain={['dataMin', 'dataMax']} />
          <Tooltip
            cursor={false}
            isAnimationActive={false}
            wrapperStyle={{ zIndex: 10 }}
            formatter={(v) => [count(Number(v)), 'customers']}
            labelFormatter={(_, items) => String(items?.[0]?.payload?.day ?? '')}
          />
          <Line
            type="stepAfter"
            dataKey="members"
            stroke={segmentColor(segmentId)}
            strokeWidth={2}
            dot={false}
            isAnimationActive={false}
          />
        </LineChart>
      </div>
      <Typography.Text
        type={known.length === 1 ? 'secondary' : change > 0 ? 'success' : change < 0 ? 'danger' : 'secondary'}
        style={{ fontSize: 12, minWidth: 44, textAlign: 'right' }}
      >
        {known.length === 1 ? 'new' : `${change > 0 ? '+' : change < 0 ? '−' : '±'}${count(Math.abs(change))}`}
      </Typography.Text>
    </Flex>
  )
}

/** Which segments a running refresh job is working on; polled while one runs, and the
 * list and trends reloaded when it ends. */
function useRefreshing(workspaceId: number) {
  const queryClient = useQueryClient()
  const jobs = useQuery({
    queryKey: ['jobs', workspaceId, 'segment-refreshes'],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/jobs', {
          params: { path: { workspace_id: workspaceId }, query: { limit: 20 } },
        }),
      ),
    refetchInterval: (query) => (running(query.state.data?.items ?? []).length > 0 ? 2_000 : false),
  })
  const active = running(jobs.data?.items ?? [])
  const wasActive = useRef(false)
  useEffect(() => {
    if (wasActive.current && active.length === 0) {
      queryClient.invalidateQueries({ queryKey: ['segments', workspaceId] })
    }
    wasActive.current = active.length > 0
  }, [active.length, queryClient, workspaceId])
  const all = active.some((j) => j.params.names == null && j.params.segment_id == null)
  return {
    all,
    refetch: jobs.refetch,
    has: (s: Segment) =>
      s.kind !== 'static' &&
      (all ||
        active.some(
          (j) =>
            j.params.segment_id === s.id ||
            (Array.isArray(j.params.names) && j.params.names.includes(s.name)),
        )),
  }
}

function running(jobs: Job[]): Job[] {
  return jobs.filter(
    (j) => j.kind === 'segments.refresh' && (j.status === 'queued' || j.status === 'running'),
  )
}
