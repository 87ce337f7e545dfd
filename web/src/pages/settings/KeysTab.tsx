import { useState } from 'react'
import { Alert, Button, Form, Input, Radio, Space, Table, Tag, Typography } from 'antd'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { api, unwrap } from '../../api/client'
import type { components } from '../../api/schema'
import { Failed } from '../../ui/states'
import { ChangeFailed, NotAllowed, Section } from './parts'
import { when } from '../../ui/format'
import { useWorkspace } from './common'
import { ConfirmButton } from '../../ui/ConfirmButton'

type Kind = components['schemas']['KeyCreate']['kind']
type Created = components['schemas']['KeyCreated']

const KINDS: { value: Kind; label: string; use: string }[] = [
  { value: 'write', label: 'Write', use: 'send events to the ingest API (/v1/track, /v1/identify…)' },
  { value: 'read', label: 'Read', use: 'read a customer’s segments from the personalization API' },
]

/** The workspace's API keys: which exist, when each was last used, a new one (shown once)
 * and revoking one. */
export default function KeysTab() {
  const { workspaceId, manages } = useWorkspace()
  const client = useQueryClient()
  const key = ['settings-keys', workspaceId]
  const path = { workspace_id: workspaceId }
  const keys = useQuery({
    queryKey: key,
    enabled: manages,
    queryFn: () =>
      unwrap(api.GET('/api/v1/workspaces/{workspace_id}/keys', { params: { path, query: { limit: 500 } } })),
  })
  const revoke = useMutation({
    mutationFn: (id: number) =>
      unwrap(
        api.DELETE('/api/v1/workspaces/{workspace_id}/keys/{key_id}', {
          params: { path: { ...path, key_id: id } },
        }),
      ),
    onSettled: () => client.invalidateQueries({ queryKey: key }),
  })
  if (!manages) return <NotAllowed what="see and create API keys" />
  return (
    <Space orientation="vertical" size="large" style={{ width: '100%' }}>
      <CreateKey onCreated={() => client.invalidateQueries({ queryKey: key })} />
      <Section
        title="Keys"
        intro="Strata keeps only a hash of each key: the list shows its first characters to tell them apart. A revoked key stops working at once."
      >
        {keys.isError && <Failed error={keys.error} />}
        <ChangeFailed error={revoke.error} />
        <Table
          rowKey="id"
          loading={keys.isPending}
          dataSource={keys.data?.items ?? []}
          pagination={{ pageSize: 25, hideOnSinglePage: true }}
          scroll={{ x: 'max-content' }}
          locale={{ emptyText: 'No API keys yet: create one above.' }}
          columns={[
            { title: 'Name', dataIndex: 'name', render: (n: string) => <Typography.Text strong>{n}</Typography.Text> },
            {
              title: 'Kind',
              dataIndex: 'kind',
              render: (k: string) => <Tag color={k === 'write' ? 'blue' : 'green'}>{k}</Tag>,
            },
            { title: 'Key', dataIndex: 'prefix', render: (p: string) => <Typography.Text code>{p}…</Typography.Text> },
            { title: 'Created', dataIndex: 'created_at', render: (t: string) => when(t) },
            { title: 'Last used', dataIndex: 'last_used_at', render: (t: string | null) => when(t, 'never') },
            {
              title: 'Status',
              dataIndex: 'revoked_at',
              render: (t: string | null) =>
                t ? <Tag>revoked {when(t)}</Tag> : <Tag color="success">active</Tag>,
            },
            {
              title: '',
              key: 'revoke',
              render: (_, k) =>
                k.revoked_at ? null : (
                  <ConfirmButton
                    verb="Revoke"
                    question={`Revoke “${k.name}”?`}
                    consequence="Anything still using it is refused from now on."
                    onConfirm={() => revoke.mutateAsync(k.id).catch(() => undefined)}
                    type="link"
                    aria-label={`Revoke ${k.name}`}
                  />
                ),
            },
          ]}
        />
      </Section>
    </Space>
  )
}

function CreateKey({ onCreated }: { onCreated: () => void }) {
  const { workspaceId } = useWorkspace()
  const [form] = Form.useForm<{ name: string; kind: Kind }>()
  const [created, setCreated] = useState<Created | null>(null)
  const create = useMutation({
    mutationFn: (body: { name: string; kind: Kind }) =>
      unwrap(
        api.POST('/api/v1/workspaces/{workspace_id}/keys', {
          params: { path: { workspace_id: workspaceId } },
          body,
        }),
      ),
    onSuccess: (k) => {
      setCreated(k)
      form.resetFields()
      onCreated()
    },
  })
  return (
    <Section title="Create a key" intro="Keys let your servers and apps call Strata without a person signing in.">
      {created && (
        <Alert
          type="warning"
          showIcon
          title={`Copy the key “${created.name}” now: it is shown only this once.`}
          description={
            <Space orientation="vertical" style={{ width: '100%' }}>
              <Typography.Text code copyable={{ text: created.key }} aria-label="New API key" style={{ wordBreak: 'break-all' }}>
                {created.key}
              </Typography.Text>
              <Button size="small" onClick={() => setCreated(null)}>
                I have copied it
              </Button>
            </Space>
          }
        />
      )}
      <ChangeFailed error={create.error} />
      <Form form={form} layout="vertical" initialValues={{ kind: 'write' }} onFinish={(v) => create.mutate(v)}>
        <Form.Item
          label="Name"
          name="name"
          rules={[{ required: true, whitespace: true, message: 'Name the key, e.g. after what uses it.' }]}
          extra="Say what uses it (e.g. “Website tracking”), to know what breaks if it is revoked."
          style={{ maxWidth: 420 }}
        >
          <Input autoComplete="off" />
        </Form.Item>
        <Form.Item label="Kind" name="kind">
          <Radio.Group
            options={KINDS.map((k) => ({ value: k.value, label: `${k.label}: ${k.use}` }))}
            style={{ display: 'flex', flexDirection: 'column', gap: 4 }}
          />
        </Form.Item>
        <Button type="primary" htmlType="submit" loading={create.isPending}>
          Create key
        </Button>
      </Form>
    </Section>
  )
}
