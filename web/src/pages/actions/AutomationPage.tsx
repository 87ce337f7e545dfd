import { useState } from 'react'
import { Descriptions, Segmented, Space, Table, Typography } from 'antd'
import { useQuery } from '@tanstack/react-query'
import { useNavigate, useParams } from 'react-router-dom'
import { api, unwrap } from '../../api/client'
import type { components } from '../../api/schema'
import { Failed, Query } from '../../ui/states'
import { actionText } from './action'
import { triggerText } from './automation'
import { AutomationButtons, FiringCounts } from './AutomationButtons'
import { count, when } from '../../ui/format'
import { useWorkspaceId } from '../../ui/workspace'
import { useDestinations } from './hooks'
import { DetailHeader, type Notice, NoticeBar, SegmentLink, StatusTag } from './shared'

type Firing = components['schemas']['FiringPublic']

const PAGE = 25
const STATUSES = ['all', 'pending', 'done', 'skipped', 'held_out', 'failed'] as const

/** One automation: what it does, its buttons, and its firings log with each outcome. */
export function AutomationPage() {
  const workspaceId = useWorkspaceId()
  const automationId = Number(useParams().automationId)
  const navigate = useNavigate()
  const [notice, setNotice] = useState<Notice | null>(null)
  const destinations = useDestinations(workspaceId)
  const back = `/w/${workspaceId}/actions/automations`
  const automation = useQuery({
    queryKey: ['automations', workspaceId, automationId],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/automations/{automation_id}', {
          params: { path: { workspace_id: workspaceId, automation_id: automationId } },
        }),
      ),
  })
  return (
    <Query query={automation} what="the automation">
      {(a) => (
        <Space orientation="vertical" size="large" style={{ width: '100%' }}>
          <DetailHeader back={back} list="Automations" name={a.name} status={a.status} />
          <Descriptions
            bordered
            size="small"
            column={{ xs: 1, md: 2 }}
            items={[
              {
                key: 'segment',
                label: 'Segment',
                children: <SegmentLink workspaceId={workspaceId} id={a.segment_id} name={a.segment} />,
              },
              { key: 'when', label: 'When a customer…', children: triggerText(a) },
              { key: 'does', label: 'Does', children: actionText(a.action, destinations) },
              {
                key: 'if',
                label: 'Only if',
                children: a.condition ? <Typography.Text code>{JSON.stringify(a.condition)}</Typography.Text> : 'always',
              },
              ...(a.next_run_at ? [{ key: 'next', label: 'Next run', children: when(a.next_run_at) }] : []),
              { key: 'firings', label: 'Firings', children: <FiringCounts firings={a.firings} /> },
            ]}
          />
          <AutomationButtons
            workspaceId={workspaceId}
            automation={a}
            onNotice={setNotice}
            onDeleted={() => navigate(back)}
          />
          <NoticeBar notice={notice} onClose={() => setNotice(null)} />
          <FiringsLog workspaceId={workspaceId} automationId={a.id} />
        </Space>
      )}
    </Query>
  )
}

/** Every firing on record, newest first: who, what change, when it was due, the outcome. */
function FiringsLog({ workspaceId, automationId }: { workspaceId: number; automationId: number }) {
  const [status, setStatus] = useState<(typeof STATUSES)[number]>('all')
  const [page, setPage] = useState(1)
  const firings = useQuery({
    queryKey: ['automations', workspaceId, automationId, 'firings', status, page],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/automations/{automation_id}/firings', {
          params: {
            path: { workspace_id: workspaceId, automation_id: automationId },
            query: { status: status === 'all' ? undefined : status, limit: PAGE, offset: (page - 1) * PAGE },
          },
        }),
      ),
    // Firings waiting to be acted on settle within seconds unless they wait on purpose.
    refetchInterval: (query) =>
      query.state.data?.items.some((f) => f.status === 'pending' || f.status === 'acting') ? 5000 : false,
  })
  return (
    <Space orientation="vertical" style={{ width: '100%' }}>
      <Space wrap style={{ justifyContent: 'space-between', width: '100%' }}>
        <Typography.Title level={5} style={{ margin: 0 }}>
          Firings
        </Typography.Title>
        <Segmented
          aria-label="Firing status"
          options={STATUSES.map((s) => ({ value: s, label: s.replace('_', ' ') }))}
          value={status}
          onChange={(value) => {
            setStatus(value)
            setPage(1)
          }}
        />
      </Space>
      {firings.isError ? (
        <Failed error={firings.error} />
      ) : (
        <Table<Firing>
          rowKey="id"
          loading={firings.isPending}
          dataSource={firings.data?.items ?? []}
          scroll={{ x: 'max-content' }}
          locale={{
            emptyText:
              status === 'all'
                ? 'No firings yet: it fires when a customer enters or leaves the segment, or on its schedule.'
                : `No ${status.replace('_', ' ')} firings.`,
          }}
          pagination={{
            current: page,
            pageSize: PAGE,
            total: firings.data?.total ?? 0,
            showSizeChanger: false,
            hideOnSinglePage: true,
            showTotal: (total) => `${count(total)} firings`,
            onChange: setPage,
          }}
          columns={[
            { title: 'Customer', dataIndex: 'customer_id', render: (id: number) => `#${id}` },
            { title: 'Change', dataIndex: 'change' },
            { title: 'At', dataIndex: 'at', render: (t: string) => when(t) },
            { title: 'Due', dataIndex: 'due_at', render: (t: string) => when(t) },
            { title: 'Status', dataIndex: 'status', render: (s: string) => <StatusTag status={s} /> },
            {
              title: 'Outcome',
              dataIndex: 'outcome',
              render: (o: string | null) => (
                <Typography.Text style={{ maxWidth: 360 }} ellipsis={{ tooltip: o }}>
                  {o ?? '–'}
                </Typography.Text>
              ),
            },
            { title: 'Done', dataIndex: 'done_at', render: (t: string | null) => when(t) },
          ]}
        />
      )}
    </Space>
  )
}
