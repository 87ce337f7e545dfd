import { useState } from 'react'
import { Alert, Button, Card, Col, Descriptions, Form, Input, Row, Select, Space, Tag, Typography } from 'antd'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { Link, useNavigate, useParams } from 'react-router-dom'
import { api, unwrap } from '../../api/client'
import { Query } from '../../ui/states'
import { DeliveryLog } from './DeliveryLog'
import { when } from './format'
import { useWorkspaceId } from './hooks'
import { type Notice, NoticeBar, StatusTag } from './shared'
import { EVENT_TYPES, type ShownSecret, type Webhook } from './webhook'
import { SecretShownOnce, WebhookButtons } from './WebhookButtons'

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
          <Space orientation="vertical" size={0}>
            <Link to={back}>← Webhooks</Link>
            <Space wrap align="center" style={{ marginTop: 8 }}>
              <Typography.Title level={4} style={{ margin: 0 }}>
                {h.name}
              </Typography.Title>
              <StatusTag status={h.status} />
            </Space>
          </Space>
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
        <Row gutter={16}>
          <Col xs={24} md={6}>
            <Form.Item label="Name" name="name" rules={[{ required: true, message: 'Name the endpoint' }]}>
              <Input maxLength={200} />
            </Form.Item>
          </Col>
          <Col xs={24} md={10}>
            <Form.Item label="URL" name="url" rules={[{ required: true, message: 'Give the address to send to' }]}>
              <Input maxLength={2000} />
            </Form.Item>
          </Col>
          <Col xs={24} md={8}>
            <Form.Item label="Events" name="event_types" extra="None chosen: every event.">
              <Select mode="multiple" allowClear placeholder="Every event" options={EVENT_TYPES} />
            </Form.Item>
          </Col>
        </Row>
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
