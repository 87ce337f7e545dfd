import { useState } from 'react'
import { Button, Form, Input, Modal, Select, Table, Tag, Typography } from 'antd'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { api, unwrap } from '../../api/client'
import type { components } from '../../api/schema'
import { Failed } from '../../ui/states'
import { ChangeFailed, Section } from './parts'
import { when } from '../../ui/format'
import { useWorkspace } from './common'
import { ConfirmButton } from '../../ui/ConfirmButton'

type Create = components['schemas']['DestinationCreate']
type Destination = components['schemas']['DestinationPublic']

const TOOLS: { value: Create['kind']; label: string; key: string }[] = [
  { value: 'mailchimp', label: 'Mailchimp', key: 'Mailchimp API key' },
  { value: 'klaviyo', label: 'Klaviyo', key: 'Klaviyo private API key' },
  { value: 'hubspot', label: 'HubSpot', key: 'HubSpot private app token' },
]

/** The marketing tools (Mailchimp, Klaviyo, HubSpot) segments sync to: connect one with
 * its key (shown back as its last four characters only) and remove it. */
export default function SyncDestinations() {
  const { workspaceId, manages } = useWorkspace()
  const client = useQueryClient()
  const key = ['settings-sync-destinations', workspaceId]
  const path = { workspace_id: workspaceId }
  const [adding, setAdding] = useState(false)
  const destinations = useQuery({
    queryKey: key,
    queryFn: () =>
      unwrap(api.GET('/api/v1/workspaces/{workspace_id}/syncs/destinations', { params: { path, query: { limit: 500 } } })),
  })
  const remove = useMutation({
    mutationFn: (id: number) =>
      unwrap(
        api.DELETE('/api/v1/workspaces/{workspace_id}/syncs/destinations/{destination_id}', {
          params: { path: { ...path, destination_id: id } },
        }),
      ),
    onSettled: () => client.invalidateQueries({ queryKey: key }),
  })
  return (
    <Section
      title="Marketing tools"
      intro="Accounts that segments are kept in step with (syncs are set up under Actions). Keys are sealed at rest; only their last four characters are shown."
      extra={
        manages && (
          <Button type="primary" onClick={() => setAdding(true)}>
            Connect a tool
          </Button>
        )
      }
    >
      {destinations.isError && <Failed error={destinations.error} />}
      <ChangeFailed error={remove.error} />
      <Table
        rowKey="id"
        loading={destinations.isPending}
        dataSource={destinations.data?.items ?? []}
        pagination={{ pageSize: 25, hideOnSinglePage: true }}
        scroll={{ x: 'max-content' }}
        locale={{ emptyText: 'No marketing tool connected yet.' }}
        columns={[
          { title: 'Name', dataIndex: 'name', render: (n: string) => <Typography.Text strong>{n}</Typography.Text> },
          { title: 'Tool', dataIndex: 'kind', render: (k: string) => TOOLS.find((t) => t.value === k)?.label ?? k },
          {
            title: 'Key',
            dataIndex: 'key_hint',
            render: (h: string | null) => (h ? <Typography.Text code>{h}</Typography.Text> : '–'),
          },
          {
            title: 'Status',
            dataIndex: 'status',
            render: (s: string, d) =>
              s === 'active' ? (
                <Tag color="success">active</Tag>
              ) : (
                <Tag color="warning">
                  {s}
                  {d.disabled_reason ? `: ${d.disabled_reason}` : ''}
                </Tag>
              ),
          },
          { title: 'Connected', dataIndex: 'created_at', render: (t: string) => when(t) },
          ...(manages
            ? [
                {
                  title: '',
                  key: 'remove',
                  render: (_: unknown, d: Destination) => (
                    <ConfirmButton
                      verb="Remove"
                      question={`Remove “${d.name}”?`}
                      consequence="Its key and its syncs are forgotten; the lists in the tool keep their members."
                      onConfirm={() => remove.mutateAsync(d.id).catch(() => undefined)}
                      type="link"
                      aria-label={`Remove ${d.name}`}
                    />
                  ),
                },
              ]
            : []),
        ]}
      />
      {adding && (
        <ConnectTool
          onDone={() => {
            setAdding(false)
            client.invalidateQueries({ queryKey: key })
          }}
          onCancel={() => setAdding(false)}
        />
      )}
    </Section>
  )
}

function ConnectTool({ onDone, onCancel }: { onDone: () => void; onCancel: () => void }) {
  const { workspaceId } = useWorkspace()
  const [form] = Form.useForm<{ name: string; kind: Create['kind']; api_key: string; base_url?: string }>()
  const kind = Form.useWatch('kind', form)
  const connect = useMutation({
    mutationFn: (v: { name: string; kind: Create['kind']; api_key: string; base_url?: string }) =>
      unwrap(
        api.POST('/api/v1/workspaces/{workspace_id}/syncs/destinations', {
          params: { path: { workspace_id: workspaceId } },
          body: { name: v.name, kind: v.kind, api_key: v.api_key, config: v.base_url ? { base_url: v.base_url } : {} },
        }),
      ),
    onSuccess: onDone,
  })
  return (
    <Modal
      open
      title="Connect a marketing tool"
      okText="Connect"
      onOk={() => form.submit()}
      confirmLoading={connect.isPending}
      onCancel={onCancel}
    >
      <ChangeFailed error={connect.error} />
      <Form
        form={form}
        layout="vertical"
        initialValues={{ kind: 'mailchimp' }}
        onFinish={(v) => connect.mutate(v)}
        style={{ marginTop: 12 }}
      >
        <Form.Item label="Tool" name="kind">
          <Select options={TOOLS} />
        </Form.Item>
        <Form.Item label="Name" name="name" rules={[{ required: true, whitespace: true }]}>
          <Input placeholder="e.g. Newsletter account" />
        </Form.Item>
        <Form.Item
          label={TOOLS.find((t) => t.value === kind)?.key ?? 'API key'}
          name="api_key"
          rules={[{ required: true, min: 8, message: 'Paste the key (8 characters or more).' }]}
        >
          <Input.Password autoComplete="off" />
        </Form.Item>
        <Form.Item label="API address (optional)" name="base_url" extra="Only to go through a proxy.">
          <Input placeholder="https://…" />
        </Form.Item>
      </Form>
    </Modal>
  )
}
