import { useState } from 'react'
import { Alert, Button, Card, Descriptions, Form, Space, Tag, Typography } from 'antd'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { useNavigate, useParams } from 'react-router-dom'
import { api, unwrap } from '../../api/client'
import { Query } from '../../ui/states'
import { DeliveryLog } from './DeliveryLog'
import { when } from '../../ui/format'
import { useWorkspaceId } from '../../ui/workspace'
import { DetailHeader, type Notice, NoticeBar } from './shared'
import { type ShownSecret, type Webhook } from './webhook'
import { SecretShownOnce, WebhookButtons } from './WebhookButtons'
import { EndpointFields } from './EndpointFields'

/** One endpoint: where it sends, what it receives, its buttons, and its delivery log. */
export function WebhookPage() {
  const workspaceId = useWorkspaceId()
  const webhookId = Number(useParams().webhookId)
  const navigate = useNavigate()
  const [secret, setSecret] = useState<ShownSecret | null>(null)
  const [notice, setNotice] = useState<Notice | null>(null)
  const [editing, setEditing] = useState(false)
  const back = `/w/${workspaceId}/actions/webhooks`
  const hook = useQuery({
    queryKey: ['webhooks', workspaceId, webhookId],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/webhooks/{destination_id}', {
          params: { path: { workspace_id: workspaceId, destination_id: webhookId } },
        }),
      ),
  })

  return (
    <Query query={hook} what="the endpoint">
      {(h) => (
        <Space orientation="vertical" size="large" style={{ width: '100%' }}>
          <DetailHeader back={back} list="Webhooks" name={h.name} status={h.status} />
          <Descriptions
            bordered
            size="small"
            column={{ xs: 1, md: 2 }}
            items={[
              { key: 'url', label: 'URL', children: <Typography.Text copyable>{h.url}</Typography.Text> },
              {
                key: 'events',
                label: 'Receives',
                children: h.event_types ? h.event_types.map((t) => <Tag key={t}>{t}</Tag>) : 'every event',
              },
              { key: 'created', label: 'Added', children: when(h.created_at) },
              {
                key: 'secret',
                label: 'Previous secret',
                children: h.previous_secret_expires_at
                  ? `signs until ${when(h.previous_secret_expires_at)}`
                  : 'none (never rotated, or expired)',
              },
              ...(h.disabled_reason
                ? [{ key: 'why', label: 'Disabled because', children: h.disabled_reason }]
                : []),
            ]}
          />
          <Space wrap size="small">
            <Button size="small" onClick={() => setEditing(!editing)}>
              Edit
            </Button>
            <WebhookButtons
              workspaceId={workspaceId}
              hook={h}
              onSecret={setSecret}
              onNotice={setNotice}
              onRemoved={() => navigate(back)}
            />
          </Space>
          {editing && <EditWebhook workspaceId={workspaceId} hook={h} onDone={() => setEditing(false)} />}
          {secret && <SecretShownOnce shown={secret} onClose={() => setSecret(null)} />}
          <NoticeBar notice={notice} onClose={() => setNotice(null)} />
          <DeliveryLog workspaceId={workspaceId} webhookId={h.id} />
        </Space>
      )}
    </Query>
  )
}

/** Change the name, the address or the events; the secret stays. */
function EditWebhook({ workspaceId, hook, onDone }: { workspaceId: number; hook: Webhook; onDone: () => void }) {
  const client = useQueryClient()
  const save = useMutation({
    mutationFn: (v: { name: string; url: string; event_types?: string[] }) =>
      unwrap(
        api.PATCH('/api/v1/workspaces/{workspace_id}/webhooks/{destination_id}', {
          params: { path: { workspace_id: workspaceId, destination_id: hook.id } },
          body: { name: v.name, url: v.url, event_types: v.event_types?.length ? v.event_types : null },
        }),
      ),
    onSuccess: async () => {
      await client.invalidateQueries({ queryKey: ['webhooks', workspaceId] })
      onDone()
    },
  })
  return (
    <Card title={`Edit ${hook.name}`} size="small">
      <Form
        layout="vertical"
        initialValues={{ name: hook.name, url: hook.url, event_types: hook.event_types ?? [] }}
        onFinish={(v) => save.mutate(v)}
      >
        <EndpointFields />
        {save.isError && <Alert type="error" showIcon title={save.error.message} style={{ marginBottom: 16 }} />}
        <Space>
          <Button type="primary" htmlType="submit" loading={save.isPending}>
            Save
          </Button>
          <Button onClick={onDone}>Cancel</Button>
        </Space>
      </Form>
    </Card>
  )
}
