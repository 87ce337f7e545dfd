import { useState } from 'react'
import { Alert, Button, Segmented, Space, Table, Typography } from 'antd'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { api, unwrap } from '../../api/client'
import type { components } from '../../api/schema'
import { Failed, Loading } from '../../ui/states'
import { count, instant } from '../../ui/format'
import { StatusTag } from './shared'

type Message = components['schemas']['strata__api__routes__webhooks__MessagePublic']
type Attempt = components['schemas']['AttemptPublic']

const PAGE = 25
const PAYLOAD = {
  margin: 0,
  padding: 12,
  background: '#f5f5f5',
  whiteSpace: 'pre-wrap',
  wordBreak: 'break-all',
} as const
const STATUSES = ['all', 'pending', 'delivering', 'delivered', 'failed']

/** An endpoint's messages, newest first: status, attempts, the last answer, the next retry;
 * a row opens every attempt and the payload as sent; any message can be sent again. */
export function DeliveryLog({ workspaceId, webhookId }: { workspaceId: number; webhookId: number }) {
  const client = useQueryClient()
  const [status, setStatus] = useState('all')
  const [page, setPage] = useState(1)
  const messages = useQuery({
    queryKey: ['webhooks', workspaceId, webhookId, 'messages', status, page],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/webhooks/{destination_id}/messages', {
          params: {
            path: { workspace_id: workspaceId, destination_id: webhookId },
            query: {
              status: status === 'all' ? undefined : status,
              limit: PAGE,
              offset: (page - 1) * PAGE,
            },
          },
        }),
      ),
    // Messages on their way change within seconds; follow them until they settle.
    refetchInterval: (query) =>
      query.state.data?.items.some((m) => m.status === 'pending' || m.status === 'delivering')
        ? 5000
        : false,
  })
  const replay = useMutation({
    mutationFn: (messageId: number) =>
      unwrap(
        api.POST('/api/v1/workspaces/{workspace_id}/webhooks/messages/{message_id}/replay', {
          params: { path: { workspace_id: workspaceId, message_id: messageId } },
        }),
      ),
    onSuccess: () => client.invalidateQueries({ queryKey: ['webhooks', workspaceId] }),
  })

  return (
    <Space orientation="vertical" style={{ width: '100%' }}>
      <Space wrap style={{ justifyContent: 'space-between', width: '100%' }}>
        <Typography.Title level={5} style={{ margin: 0 }}>
          Delivery log
        </Typography.Title>
        <Segmented
          aria-label="Message status"
          options={STATUSES}
          value={status}
          onChange={(value) => {
            setStatus(value)
            setPage(1)
          }}
        />
      </Space>
      {replay.isError && <Alert type="error" showIcon title={replay.error.message} />}
      {messages.isError ? (
        <Failed error={messages.error} />
      ) : (
        <Table<Message>
          rowKey="id"
          loading={messages.isPending}
          dataSource={messages.data?.items ?? []}
          scroll={{ x: 'max-content' }}
          locale={{
            emptyText:
              status === 'all'
                ? 'Nothing sent to this endpoint yet: send a test, or let an automation send.'
                : `No ${status} messages.`,
          }}
          pagination={{
            current: page,
            pageSize: PAGE,
            total: messages.data?.total ?? 0,
            showSizeChanger: false,
            hideOnSinglePage: true,
            onChange: setPage,
          }}
          expandable={{
            expandedRowRender: (m) => <MessageDetail workspaceId={workspaceId} messageId={m.id} />,
          }}
          columns={[
            {
              title: 'Message',
              dataIndex: 'msg_id',
              render: (msgId: string, m) => (
                <Space orientation="vertical" size={0}>
                  <Typography.Text>{m.event_type}</Typography.Text>
                  <Typography.Text type="secondary" copyable style={{ fontSize: 12 }}>
                    {msgId}
                  </Typography.Text>
                </Space>
              ),
            },
            {
              title: 'Status',
              dataIndex: 'status',
              render: (s: string, m) => (
                <Space orientation="vertical" size={0}>
                  <StatusTag status={s} />
                  <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                    {s === 'pending'
                      ? `next try ${instant(m.next_attempt_at)}`
                      : s === 'delivered'
                        ? `at ${instant(m.delivered_at)}`
                        : ''}
                  </Typography.Text>
                </Space>
              ),
            },
            { title: 'Attempts', dataIndex: 'attempts', align: 'right' },
            {
              title: 'Last answer',
              key: 'answer',
              render: (_, m) => (
                <Space orientation="vertical" size={0}>
                  <Typography.Text>
                    {m.last_status_code != null
                      ? `HTTP ${m.last_status_code}`
                      : m.attempts > 0
                        ? 'no answer'
                        : 'not tried yet'}
                  </Typography.Text>
                  {m.last_error && (
                    <Typography.Text
                      type="danger"
                      style={{ maxWidth: 280, fontSize: 12 }}
                      ellipsis={{ tooltip: m.last_error }}
                    >
                      {m.last_error}
                    </Typography.Text>
                  )}
                </Space>
              ),
            },
            { title: 'Queued', dataIndex: 'created_at', render: (t: string) => instant(t) },
            {
              title: '',
              key: 'replay',
              render: (_, m) => (
                <Button
                  size="small"
                  loading={replay.isPending && replay.variables === m.id}
                  onClick={() => replay.mutate(m.id)}
                >
                  Replay
                </Button>
              ),
            },
          ]}
        />
      )}
    </Space>
  )
}

/** Every attempt of one message and the body exactly as signed and sent. */
function MessageDetail({ workspaceId, messageId }: { workspaceId: number; messageId: number }) {
  const detail = useQuery({
    queryKey: ['webhooks', workspaceId, 'message', messageId],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/webhooks/messages/{message_id}', {
          params: { path: { workspace_id: workspaceId, message_id: messageId } },
        }),
      ),
  })
  if (detail.isError) return <Failed error={detail.error} />
  if (detail.isPending) return <Loading what="the attempts" />
  return (
    <Space orientation="vertical" style={{ width: '100%' }}>
      <Table<Attempt>
        rowKey="id"
        size="small"
        pagination={false}
        dataSource={detail.data.attempt_log}
        scroll={{ x: 'max-content' }}
        locale={{ emptyText: 'Not tried yet.' }}
        columns={[
          { title: 'Attempt at', dataIndex: 'at', render: (t: string) => instant(t) },
          {
            title: 'Answer',
            dataIndex: 'status_code',
            render: (code: number | null) => (code == null ? 'no answer' : `HTTP ${code}`),
          },
          {
            title: 'Error',
            dataIndex: 'error',
            render: (e: string | null) => (
              <Typography.Text type={e ? 'danger' : 'secondary'} style={{ maxWidth: 320 }} ellipsis={{ tooltip: e }}>
                {e ?? 'none'}
              </Typography.Text>
            ),
          },
          {
            title: 'Took',
            dataIndex: 'duration_ms',
            align: 'right',
            render: (ms: number | null) => (ms == null ? '–' : `${count(Math.round(ms))} ms`),
          },
          {
            title: 'Response body (first kilobyte)',
            dataIndex: 'response',
            render: (r: string | null) => (
              <Typography.Text code style={{ maxWidth: 280 }} ellipsis={{ tooltip: r }}>
                {r || 'empty'}
              </Typography.Text>
            ),
          },
        ]}
      />
      <Typography.Text strong>Payload</Typography.Text>
      <pre aria-label="Payload" style={PAYLOAD}>
        {JSON.stringify(detail.data.payload, null, 2)}
      </pre>
    </Space>
  )
}
