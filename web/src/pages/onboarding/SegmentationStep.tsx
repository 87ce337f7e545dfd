import { useState } from 'react'
import { Alert, Button, Card, Col, Radio, Row, Space, Tag, Typography } from 'antd'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { api, unwrap } from '../../api/client'
import { count, day, money, percent } from '../../ui/format'
import { finished, type Job } from '../../ui/workspace'
import { field, list, num, text, useStats } from './data'
import { JobBar } from './JobBar'

// The scoring time; the rest are the API's documented defaults, which its schema types as required.
type Body = { as_of?: string }

const path = (id: number) => ({ path: { workspace_id: id } })

/** The four first analyses: each is a job on the server. */
const TASKS: {
  kind: string
  title: string
  what: string
  start: (workspaceId: number, body: Body) => Promise<Job>
  summary: (result: unknown) => string
}[] = [
  {
    kind: 'rfm',
    title: 'RFM segments',
    what:
      'Scores how recently, how often and how much each customer bought, and sorts them ' +
      'into segments such as Champions and At Risk.',
    start: (id, body) =>
      unwrap(
        api.POST('/api/v1/workspaces/{workspace_id}/rfm', {
          params: path(id),
          body: { ...body, dry_run: false },
        }),
      ),
    summary: (r) =>
      `Sorted ${count(num(r, 'customers') ?? 0)} customers into ` +
      `${list(r, 'segments').length} segments. Largest: ${largest(list(r, 'segments'), 'name')}.`,
  },
  {
    kind: 'cluster',
    title: 'Behaviour clusters',
    what:
      'Groups customers who buy alike (recency, orders, spend, tenure, order value), and ' +
      'names each group.',
    start: (id, body) =>
      unwrap(
        api.POST('/api/v1/workspaces/{workspace_id}/models/clusters', {
          params: path(id),
          body: { ...body, k: 'auto', method: 'kmeans', name: 'behaviour' },
        }),
      ),
    summary: (r) =>
      `Found ${num(r, 'k') ?? 0} groups among ${count(num(r, 'trained_on') ?? 0)} customers: ` +
      `${largest(list(r, 'clusters'), 'name')}.`,
  },
  {
    kind: 'predict.churn',
    title: 'Churn risk',
    what:
      'Learns from past behaviour who stops buying, and scores every customer high, medium ' +
      'or low risk.',
    start: (id, body) =>
      unwrap(
        api.POST('/api/v1/workspaces/{workspace_id}/predictions/churn', {
          params: path(id),
          body: { ...body, horizon_days: 90, high: 0.7, medium: 0.3 },
        }),
      ),
    summary: (r) => {
      const bands = list(r, 'bands').map(
        (b) => `${count(num(b, 'customers') ?? 0)} ${text(b, 'band')}`,
      )
      const auc = num(r, 'auc')
      const checked = auc !== null ? ` (checked on later data: AUC ${auc.toFixed(2)})` : ''
      return `Scored ${count(num(r, 'customers_scored') ?? 0)} customers: ${bands.join(', ')} risk${checked}.`
    },
  },
  {
    kind: 'predict.clv',
    title: 'Lifetime value',
    what:
      "Predicts each customer's value over the next 12 months and the chance they are " +
      'still a customer.',
    start: (id, body) =>
      unwrap(
        api.POST('/api/v1/workspaces/{workspace_id}/predictions/clv', {
          params: path(id),
          body: { ...body, horizon: 12, discount_rate: 0.01, time_unit: 'week' },
        }),
      ),
    summary: (r) =>
      `Predicted the next ${num(r, 'horizon') ?? 12} months of ` +
      `${count(num(r, 'customers') ?? 0)} customers: ${money(num(r, 'total_clv') ?? 0)} in ` +
      `all; on average ${percent(num(r, 'mean_p_alive') ?? 0, 0)} are still active.`,
  },
]

/** Step 5: run RFM, clusters, churn and lifetime value, each with its progress and outcome. */
export function SegmentationStep({ workspaceId, onNext }: { workspaceId: number; onNext: () => void }) {
  const stats = useStats(workspaceId)
  const last = text(stats.data, 'last_event')
  const [asOf, setAsOf] = useState<'last' | 'now'>('last')
  const client = useQueryClient()
  // The latest job of each kind, so a reload shows what already ran.
  const jobs = useQuery({
    queryKey: ['jobs', workspaceId],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/jobs', {
          params: { path: { workspace_id: workspaceId }, query: { limit: 100 } },
        }),
      ),
    refetchInterval: (query) =>
      TASKS.some((t) => {
        const job = query.state.data?.items.find((j) => j.kind === t.kind)
        return job !== undefined && !finished(job)
      })
        ? 1000
        : false,
  })
  const start = useMutation({
    mutationFn: async (kinds: string[]) => {
      const body = asOf === 'last' && last ? { as_of: last.slice(0, 10) } : {}
      // One refusal must not keep the others from starting.
      const refused: string[] = []
      for (const task of TASKS.filter((t) => kinds.includes(t.kind)))
        await task
          .start(workspaceId, body)
          .catch((e: Error) => refused.push(`${task.title}: ${e.message}`))
      if (refused.length > 0) throw new Error(refused.join(' '))
    },
    onSettled: () => client.invalidateQueries({ queryKey: ['jobs', workspaceId] }),
  })
  const latest = (kind: string) => jobs.data?.items.find((j) => j.kind === kind)
  const running = TASKS.some((t) => {
    const job = latest(t.kind)
    return job !== undefined && !finished(job)
  })

  return (
    <Space orientation="vertical" size="middle" style={{ width: '100%' }}>
      <Typography.Title level={4} style={{ margin: 0 }}>
        Segment your customers
      </Typography.Title>
      <Radio.Group
        value={asOf}
        onChange={(e) => setAsOf(e.target.value)}
        aria-label="Score the customers as of"
      >
        <Space orientation="vertical">
          <Radio value="last" disabled={!last}>
            As of the last event in the data{last ? ` (${day(last)})` : ''}: right for a historical file
          </Radio>
          <Radio value="now">As of today: right for data that is up to date</Radio>
        </Space>
      </Radio.Group>
      <Space wrap>
        <Button
          type="primary"
          loading={start.isPending}
          disabled={running}
          onClick={() => start.mutate(TASKS.map((t) => t.kind))}
        >
          Run all four
        </Button>
        <Button onClick={onNext} disabled={running}>
          Review the segments
        </Button>
      </Space>
      {start.isError && <Alert type="error" showIcon title={start.error.message} />}
      {jobs.isError && <Alert type="error" showIcon title={jobs.error.message} />}
      <Row gutter={[16, 16]}>
        {TASKS.map((task) => (
          <Col key={task.kind} xs={24} lg={12}>
            <TaskCard
              title={task.title}
              what={task.what}
              job={latest(task.kind)}
              summary={task.summary}
              busy={start.isPending}
              onRun={() => start.mutate([task.kind])}
            />
          </Col>
        ))}
      </Row>
    </Space>
  )
}

function TaskCard({
  title,
  what,
  job,
  summary,
  busy,
  onRun,
}: {
  title: string
  what: string
  job: Job | undefined
  summary: (result: unknown) => string
  busy: boolean
  onRun: () => void
}) {
  const done = job === undefined || finished(job)
  return (
    <Card
      size="small"
      title={title}
      aria-label={title}
      extra={
        <Button size="small" onClick={onRun} disabled={!done || busy}>
          {job ? 'Run again' : 'Run'}
        </Button>
      }
      style={{ height: '100%' }}
    >
      <Typography.Paragraph type="secondary">{what}</Typography.Paragraph>
      {job === undefined && <Tag>not run yet</Tag>}
      {job && !finished(job) && <JobBar job={job} label={`${title} progress`} />}
      {job?.status === 'succeeded' && (
        <Alert type="success" showIcon title={summary(job.result)} />
      )}
      {(job?.status === 'failed' || job?.status === 'interrupted') && (
        <Alert
          type="warning"
          showIcon
          title="Not run on this data"
          description={
            `${job.message ?? 'The server stopped before it finished.'} ` +
            'You can carry on without it.'
          }
        />
      )}
    </Card>
  )
}

/** "Champions (445), Loyal Customers (504), …": the three largest with customers. */
function largest(items: unknown[], key: string): string {
  return items
    .filter((i) => (num(i, 'customers') ?? 0) > 0)
    .sort((a, b) => (num(b, 'customers') ?? 0) - (num(a, 'customers') ?? 0))
    .slice(0, 3)
    .map((i) => `${String(field(i, key))} (${count(num(i, 'customers') ?? 0)})`)
    .join(', ')
}
