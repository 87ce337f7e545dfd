import { useEffect, useState } from 'react'
import { Alert, Button, Card, Col, Row, Space, Statistic, Table, Typography } from 'antd'
import { useQuery, useQueryClient } from '@tanstack/react-query'
import { api, unwrap } from '../../api/client'
import { Failed, Loading, Query } from '../../ui/states'
import { count, money } from '../../ui/format'
import { useJob } from '../../ui/workspace'
import { field, num, useStats } from './data'
import { JobBar } from './JobBar'

const PAGE = 20

/** Step 4: the import's progress, then its report and every bad row. */
export function ImportStep({
  workspaceId,
  jobId,
  onRetry,
  onAnother,
  onNext,
}: {
  workspaceId: number
  jobId: number
  onRetry: () => void
  onAnother: () => void
  onNext: () => void
}) {
  const job = useJob(workspaceId, jobId)
  const client = useQueryClient()
  const imported = job.data?.status === 'succeeded'
  useEffect(() => {
    // What the workspace holds has changed: figures and segments read before are stale.
    if (imported) void client.invalidateQueries({ queryKey: ['stats', workspaceId] })
    if (imported) void client.invalidateQueries({ queryKey: ['segments', workspaceId] })
  }, [imported, client, workspaceId])
  if (job.isError) return <Failed error={job.error} />
  if (job.isPending) return <Loading what="the import" />
  const j = job.data
  const importId = num(j.result, 'import_id')
  return (
    <Space orientation="vertical" size="middle" style={{ width: '100%' }}>
      <Typography.Title level={4} style={{ margin: 0 }}>
        {j.status === 'succeeded' ? 'Imported' : `Importing ${String(field(j.params, 'file') ?? 'the file')}`}
      </Typography.Title>
      {j.status !== 'succeeded' && <JobBar job={j} label="Import progress" />}
      {(j.status === 'failed' || j.status === 'interrupted') && (
        <>
          <Alert
            type="error"
            showIcon
            title="The import did not finish; nothing was written."
            description={j.message ?? 'The server stopped before it finished.'}
          />
          <Button onClick={onRetry}>Back to the file</Button>
        </>
      )}
      {j.status === 'succeeded' && importId !== null && (
        <>
          <ImportReport workspaceId={workspaceId} importId={importId} />
          <Space wrap>
            <Button onClick={onAnother}>Import another file</Button>
            <Button type="primary" onClick={onNext}>
              Continue to segmentation
            </Button>
          </Space>
        </>
      )}
    </Space>
  )
}

function ImportReport({ workspaceId, importId }: { workspaceId: number; importId: number }) {
  const path = { workspace_id: workspaceId, import_id: importId }
  const run = useQuery({
    queryKey: ['import', workspaceId, importId],
    queryFn: () =>
      unwrap(api.GET('/api/v1/workspaces/{workspace_id}/imports/{import_id}', { params: { path } })),
  })
  const stats = useStats(workspaceId)
  return (
    <Query query={run} what="the import report">
      {(r) => {
        const report = r.report
        const skipped = Object.entries((field(report, 'rows_skipped') ?? {}) as object)
        const left = skipped.reduce((sum, [, n]) => sum + (typeof n === 'number' ? n : 0), 0)
        const figures = [
          ['Rows read', count(num(report, 'rows_read') ?? 0)],
          ['Rows loaded', count((num(report, 'rows_read') ?? 0) - left)],
          ['Rows refused', count(left)],
          ['Bad values', count(num(report, 'invalid_values') ?? 0)],
          ['New customers', count(num(report, 'customers_created') ?? 0)],
          ['Customers updated', count(num(report, 'customers_updated') ?? 0)],
          ['Orders', count(num(report, 'orders') ?? 0)],
          ['Net revenue', money(num(report, 'net_revenue') ?? 0)],
        ]
        return (
          <Space orientation="vertical" size="middle" style={{ width: '100%' }}>
            <Alert
              type={left > 0 ? 'warning' : 'success'}
              showIcon
              title={
                `${r.source}: ${count(num(report, 'events_created') ?? 0)} events added, ` +
                `${count(num(report, 'duplicates_skipped') ?? 0)} already there.`
              }
              description={
                stats.data
                  ? `The workspace now holds ${count(num(stats.data, 'customers') ?? 0)} ` +
                    `customers and ${count(num(stats.data, 'orders') ?? 0)} orders.`
                  : undefined
              }
            />
            <Row gutter={[12, 12]}>
              {figures.map(([title, value]) => (
                <Col key={title} xs={12} md={6}>
                  <Card size="small">
                    <Statistic title={title} value={value} />
                  </Card>
                </Col>
              ))}
            </Row>
            {skipped.length > 0 && (
              <Typography.Text>
                Refused rows by reason:{' '}
                {skipped.map(([reason, n]) => `${reason} (${count(Number(n))})`).join(', ')}
              </Typography.Text>
            )}
            <BadRows workspaceId={workspaceId} importId={importId} total={r.bad_rows} />
          </Space>
        )
      }}
    </Query>
  )
}

/** The import's bad rows page by page (row number, column, problem, value), and as CSV. */
function BadRows({ workspaceId, importId, total }: { workspaceId: number; importId: number; total: number }) {
  const [page, setPage] = useState(1)
  const errors = useQuery({
    queryKey: ['import-errors', workspaceId, importId, page],
    enabled: total > 0,
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/imports/{import_id}/errors', {
          params: {
            path: { workspace_id: workspaceId, import_id: importId },
            query: { limit: PAGE, offset: (page - 1) * PAGE },
          },
        }),
      ),
  })
  if (total === 0)
    return <Typography.Text type="secondary">No row had a value Strata could not read.</Typography.Text>
  return (
    <Space orientation="vertical" style={{ width: '100%' }}>
      <Space wrap style={{ justifyContent: 'space-between', width: '100%' }}>
        <Typography.Text strong>Rows with a problem</Typography.Text>
        <Button href={`/api/v1/workspaces/${workspaceId}/imports/${importId}/errors.csv`} download>
          Download the bad rows (CSV)
        </Button>
      </Space>
      {errors.isError ? (
        <Failed error={errors.error} />
      ) : (
        <Table
          size="small"
          aria-label="Rows with a problem"
          rowKey={(e) => `${e.row}-${e.column}`}
          loading={errors.isPending}
          dataSource={errors.data?.items ?? []}
          scroll={{ x: 'max-content' }}
          pagination={{
            current: page,
            pageSize: PAGE,
            total: errors.data?.total ?? total,
            showSizeChanger: false,
            hideOnSinglePage: true,
            showTotal: (n) => `${count(n)} problems`,
            onChange: setPage,
          }}
          columns={[
            { title: 'Row', dataIndex: 'row', align: 'right', render: (n: number) => count(n) },
            { title: 'Column', dataIndex: 'column' },
            { title: 'Problem', dataIndex: 'reason' },
            { title: 'Value', dataIndex: 'value', render: (v: string | null) => v ?? '(empty)' },
          ]}
        />
      )}
    </Space>
  )
}
