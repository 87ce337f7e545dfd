import { Alert, Card, Flex, Progress, Spin, Table, Typography } from 'antd'
import { keepPreviousData, useQuery } from '@tanstack/react-query'
import { Link } from 'react-router-dom'
import { api, unwrap } from '../../api/client'
import { count, decimal, percent } from '../../ui/format'
import { useSettled } from '../../ui/settled'
import type { ApiRule } from './rule'

/** How long the rule must stay unchanged before it is previewed: typing a value does not
 * send a request per key. */
const DEBOUNCE_MS = 400
const SAMPLE = 5

/** The live size of the rule being built: count, share of all customers and the first few
 * members, or the API's reason it cannot be evaluated yet. Nothing is saved. */
export function Preview({
  workspaceId,
  rule,
  todo,
}: {
  workspaceId: number
  rule: ApiRule
  todo: string[]
}) {
  const body = useSettled(JSON.stringify(rule), DEBOUNCE_MS)
  const path = { workspace_id: workspaceId }
  const preview = useQuery({
    queryKey: ['segment-preview', workspaceId, body],
    queryFn: () =>
      unwrap(
        api.POST('/api/v1/workspaces/{workspace_id}/segments/preview', {
          params: { path },
          body: { rule: JSON.parse(body) as ApiRule, sample: SAMPLE },
        }),
      ),
    enabled: todo.length === 0,
    placeholderData: keepPreviousData,
    retry: false,
  })
  // Every customer of the workspace: what the share is of.
  const everyone = useQuery({
    queryKey: ['customers-total', workspaceId],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/customers', {
          params: { path, query: { limit: 1 } },
        }),
      ),
  })
  const total = everyone.data?.total
  const busy = todo.length === 0 && (preview.isFetching || body !== JSON.stringify(rule))
  const data = preview.isError || todo.length > 0 ? undefined : preview.data
  const share = data && total ? data.count / total : null
  return (
    <Card
      title="Live preview"
      extra={busy ? <Spin size="small" aria-label="Updating the preview" /> : null}
      variant="outlined"
    >
      <Flex vertical gap={12}>
        {todo.length > 0 && (
          <Alert
            type="info"
            showIcon
            title="Finish the rule to see who matches"
            description={
              <ul style={{ margin: 0, paddingLeft: 18 }}>
                {todo.map((gap) => (
                  <li key={gap}>{gap}</li>
                ))}
              </ul>
            }
          />
        )}
        {todo.length === 0 && preview.isError && (
          <Alert
            type="warning"
            showIcon
            title="This rule cannot be evaluated yet"
            description={preview.error.message}
          />
        )}
        {todo.length === 0 && !preview.isError && preview.isPending && (
          <Typography.Text type="secondary">Working out who matches…</Typography.Text>
        )}
        {data && (
          <>
            <div aria-live="polite" aria-busy={busy}>
              <Typography.Text type="secondary">Customers matching now</Typography.Text>
              <div
                aria-label="Matching customers"
                style={{ fontSize: 32, fontWeight: 600, lineHeight: 1.2, opacity: busy ? 0.5 : 1 }}
              >
                {count(data.count)}
              </div>
              {share !== null && (
                <Typography.Text aria-label="Share of all customers">
                  {percent(share)} of {count(total)} customers
                </Typography.Text>
              )}
            </div>
            {share !== null && (
              <Progress percent={share * 100} showInfo={false} size="small" aria-label="Share of all customers, as a bar" />
            )}
            <SampleMembers workspaceId={workspaceId} rows={data.sample} />
            <Typography.Text type="secondary" style={{ fontSize: 12 }}>
              As of {data.as_of} UTC · evaluated in {decimal(data.seconds, 2)} s
            </Typography.Text>
          </>
        )}
      </Flex>
    </Card>
  )
}

function SampleMembers({ workspaceId, rows }: { workspaceId: number; rows: Record<string, unknown>[] }) {
  if (rows.length === 0) return null
  return (
    <Table
      size="small"
      rowKey={(r) => String(r.customer_id)}
      dataSource={rows}
      pagination={false}
      scroll={{ x: 'max-content' }}
      title={() => 'First members'}
      columns={[
        {
          title: 'Customer',
          dataIndex: 'external_id',
          render: (id: string | null) =>
            id ? <Link to={`/w/${workspaceId}/customers/${encodeURIComponent(id)}`}>{id}</Link> : '–',
        },
        {
          title: 'Name and e-mail',
          key: 'who',
          render: (_, r) => (
            <Flex vertical>
              <span>{typeof r.name === 'string' ? r.name : '–'}</span>
              {typeof r.email === 'string' && (
                <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                  {r.email}
                </Typography.Text>
              )}
            </Flex>
          ),
        },
      ]}
    />
  )
}
