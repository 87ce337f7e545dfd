import { useState } from 'react'
import { Alert, Button, Card, Form, Space, Table, Tag, Typography } from 'antd'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { Link } from 'react-router-dom'
import { api, unwrap } from '../../api/client'
import { Failed, Nothing } from '../../ui/states'
import { when } from '../../ui/format'
import { useWorkspaceId } from '../../ui/workspace'
import { type Notice, NoticeBar, StatusTag } from './shared'
import { type ShownSecret, type Webhook } from './webhook'
import { SecretShownOnce, WebhookButtons } from './WebhookButtons'
import { EndpointFields } from './EndpointFields'

/** The endpoints: each one's address, what it receives, whether it is on and how its last
 * message went; adding one shows its signing secret once. */
export function WebhooksTab() {
  const workspaceId = useWorkspaceId()
  const [secret, setSecret] = useState<ShownSecret | null>(null)
  const [notice, setNotice] = useState<Notice | null>(null)
  const hooks = useQuery({
    queryKey: ['webhooks', workspaceId],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/webhooks', {
          params: { path: { workspace_id: workspaceId }, query: { limit: 500 } },
        }),
      ),
  })

  return (
    <Space orientation="vertical" size="large" style={{ width: '100%' }}>
      <AddWebhook workspaceId={workspaceId} onCreated={setSecret} />
      {secret && <SecretShownOnce shown={secret} onClose={() => setSecret(null)} />}
      <NoticeBar notice={notice} onClose={() => setNotice(null)} />
      {hooks.isError ? (
        <Failed error={hooks.error} />
      ) : (
        <Table<Webhook>
          rowKey="id"
          loading={hooks.isPending}
          dataSource={hooks.data?.items ?? []}
          pagination={{ pageSize: 25, hideOnSinglePage: true }}
          scroll={{ x: 'max-content' }}
          locale={{
            emptyText: (
              <Nothing>No webhook endpoints yet: add one above to send segment changes out.</Nothing>
            ),
          }}
          columns={[
            {
              title: 'Endpoint',
              dataIndex: 'name',
              render: (name: string, hook) => (
                <Space orientation="vertical" size={0}>
                  <Link to={`/w/${workspaceId}/actions/webhooks/${hook.id}`}>{name}</Link>
                  <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                    {hook.url}
                  </Typography.Text>
                </Space>
              ),
            },
            {
              title: 'Receives',
              dataIndex: 'event_types',
              render: (types: string[] | null) =>
                types ? types.map((t) => <Tag key={t}>{t}</Tag>) : <Tag>every event</Tag>,
            },
            {
              title: 'Status',
              dataIndex: 'status',
              render: (status: string, hook) => (
                <Space orientation="vertical" size={0}>
                  <StatusTag status={status} />
                  {hook.disabled_reason && (
                    <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                      {hook.disabled_reason}
                    </Typography.Text>
                  )}
                </Space>
              ),
            },
            {
              title: 'Last delivery',
              key: 'last',
              render: (_, hook) => <LastDelivery workspaceId={workspaceId} hook={hook} />,
            },
            {
              title: '',
              key: 'actions',
              render: (_, hook) => (
                <WebhookButtons
                  workspaceId={workspaceId}
                  hook={hook}
                  onSecret={setSecret}
                  onNotice={setNotice}
                />
              ),
            },
          ]}
        />
      )}
    </Space>
  )
}

function AddWebhook({
  workspaceId,
  onCreated,
}: {
  workspaceId: number
  onCreated: (shown: ShownSecret) => void
}) {
  const [form] = Form.useForm()
  const client = useQueryClient()
  const add = useMutation({
    mutationFn: (body: { name: string; url: string; event_types?: string[] }) =>
      unwrap(
        api.POST('/api/v1/workspaces/{workspace_id}/webhooks', {
          params: { path: { workspace_id: workspaceId } },
          body: { ...body, event_types: body.event_types?.length ? body.event_types : null },
        }),
      ),
    onSuccess: (created) => {
      onCreated({ name: created.name, secret: created.secret })
      form.resetFields()
      return client.invalidateQueries({ queryKey: ['webhooks', workspaceId] })
    },
  })
  return (
    <Card title="Add an endpoint" size="small">
      <Form form={form} layout="vertical" onFinish={(values) => add.mutate(values)} requiredMark="optional">
        <EndpointFields />
        {add.isError && (
          <Alert type="error" showIcon title={add.error.message} style={{ marginBottom: 16 }} />
        )}
        <Button type="primary" htmlType="submit" loading={add.isPending}>
          Add endpoint
        </Button>
      </Form>
    </Card>
  )
}

/** How the endpoint's newest message went, read from its delivery log. */
function LastDelivery({ workspaceId, hook }: { workspaceId: number; hook: Webhook }) {
  const last = useQuery({
    queryKey: ['webhooks', workspaceId, hook.id, 'messages', 'last'],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/webhooks/{destination_id}/messages', {
          params: { path: { workspace_id: workspaceId, destination_id: hook.id }, query: { limit: 1 } },
        }),
      ),
    // A message just queued is delivered within seconds: look again until it settles.
    refetchInterval: (query) =>
      ['pending', 'delivering'].includes(query.state.data?.items[0]?.status ?? '') ? 3000 : false,
  })
  if (last.isError) return <Typography.Text type="danger">{last.error.message}</Typography.Text>
  const message = last.data?.items[0]
  if (!message) return <Typography.Text type="secondary">{last.isPending ? '…' : 'nothing sent yet'}</Typography.Text>
  return (
    <Space orientation="vertical" size={0}>
      <Space size={4}>
        <StatusTag status={message.status} />
        {message.last_status_code != null && <Typography.Text>HTTP {message.last_status_code}</Typography.Text>}
      </Space>
      <Typography.Text type="secondary" style={{ fontSize: 12 }}>
        {message.event_type}, {when(message.delivered_at ?? message.created_at)}
      </Typography.Text>
    </Space>
  )
}
