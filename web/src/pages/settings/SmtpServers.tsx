import { useState } from 'react'
import {
  Alert,
  Button,
  Col,
  Form,
  Input,
  InputNumber,
  Modal,
  Row,
  Select,
  Space,
  Table,
  Tag,
  Typography,
} from 'antd'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { api, unwrap } from '../../api/client'
import type { components } from '../../api/schema'
import { Failed } from '../../ui/states'
import { ChangeFailed, Section } from './parts'
import { when } from '../../ui/format'
import { useWorkspace } from './common'
import { ConfirmButton } from '../../ui/ConfirmButton'

type Server = components['schemas']['ServerPublic']
type ServerCreate = components['schemas']['ServerCreate']
type Sent = components['schemas']['strata__api__routes__email__MessagePublic']

const SECURITY = [
  { value: 'starttls', label: 'STARTTLS (port 587)' },
  { value: 'ssl', label: 'SSL/TLS (port 465)' },
  { value: 'none', label: 'None (local relays only)' },
]

/** The SMTP servers the workspace sends e-mail through: add, change, test, disable and
 * remove. A password goes in and never comes back: the list says only whether one is set. */
export default function SmtpServers() {
  const { workspaceId, manages } = useWorkspace()
  const client = useQueryClient()
  const key = ['settings-smtp', workspaceId]
  const path = { workspace_id: workspaceId }
  const [editing, setEditing] = useState<Server | 'new' | null>(null)
  const [testing, setTesting] = useState<Server | null>(null)
  const servers = useQuery({
    queryKey: key,
    queryFn: () =>
      unwrap(api.GET('/api/v1/workspaces/{workspace_id}/email/servers', { params: { path, query: { limit: 500 } } })),
  })
  const changed = () => client.invalidateQueries({ queryKey: key })
  const toggle = useMutation({
    mutationFn: (s: Server) =>
      unwrap(
        api.PATCH('/api/v1/workspaces/{workspace_id}/email/servers/{destination_id}', {
          params: { path: { ...path, destination_id: s.id } },
          body: { status: s.status === 'active' ? 'disabled' : 'active' },
        }),
      ),
    onSettled: changed,
  })
  const remove = useMutation({
    mutationFn: (id: number) =>
      unwrap(
        api.DELETE('/api/v1/workspaces/{workspace_id}/email/servers/{destination_id}', {
          params: { path: { ...path, destination_id: id } },
        }),
      ),
    onSettled: changed,
  })
  return (
    <Section
      title="SMTP servers"
      intro="Automations and campaigns send e-mail through these servers. Passwords are stored sealed and never shown again."
      extra={
        manages && (
          <Button type="primary" onClick={() => setEditing('new')}>
            Add SMTP server
          </Button>
        )
      }
    >
      {servers.isError && <Failed error={servers.error} />}
      <ChangeFailed error={toggle.error ?? remove.error} />
      <Table
        rowKey="id"
        loading={servers.isPending}
        dataSource={servers.data?.items ?? []}
        pagination={{ pageSize: 25, hideOnSinglePage: true }}
        scroll={{ x: 'max-content' }}
        locale={{ emptyText: 'No SMTP server yet: add one to send e-mail.' }}
        columns={[
          { title: 'Name', dataIndex: 'name', render: (n: string) => <Typography.Text strong>{n}</Typography.Text> },
          {
            title: 'Server',
            key: 'host',
            render: (_, s) => (
              <span>
                {s.host}:{s.port} <Tag>{s.security}</Tag>
              </span>
            ),
          },
          {
            title: 'Sends as',
            key: 'from',
            render: (_, s) => (s.from_name ? `${s.from_name} <${s.from_address}>` : s.from_address),
          },
          {
            title: 'Sign-in',
            key: 'login',
            render: (_, s) =>
              s.username ? `${s.username}, ${s.password_set ? 'password set' : 'no password'}` : 'none',
          },
          {
            title: 'Status',
            dataIndex: 'status',
            render: (status: string, s) =>
              status === 'active' ? (
                <Tag color="success">active</Tag>
              ) : (
                <Tag color="warning" title={s.disabled_reason ?? undefined}>
                  disabled{s.disabled_reason ? `: ${s.disabled_reason}` : ''}
                </Tag>
              ),
          },
          { title: 'Added', dataIndex: 'created_at', render: (t: string) => when(t) },
          {
            title: '',
            key: 'actions',
            render: (_, s) => (
              <Space size={0} wrap>
                <Button type="link" onClick={() => setTesting(s)}>
                  Send test
                </Button>
                {manages && (
                  <>
                    <Button type="link" onClick={() => setEditing(s)}>
                      Edit
                    </Button>
                    <Button type="link" onClick={() => toggle.mutate(s)}>
                      {s.status === 'active' ? 'Disable' : 'Enable'}
                    </Button>
                    <ConfirmButton
                      verb="Remove"
                      question={`Remove “${s.name}”?`}
                      consequence="Mail still waiting to go through it fails."
                      onConfirm={() => remove.mutateAsync(s.id).catch(() => undefined)}
                      type="link"
                      aria-label={`Remove ${s.name}`}
                    />
                  </>
                )}
              </Space>
            ),
          },
        ]}
      />
      {editing && (
        <ServerForm
          server={editing === 'new' ? null : editing}
          onDone={() => {
            setEditing(null)
            changed()
          }}
          onCancel={() => setEditing(null)}
        />
      )}
      {testing && <TestMail server={testing} onClose={() => setTesting(null)} />}
    </Section>
  )
}

/** Add a server, or change one (a blank password keeps the stored one). */
function ServerForm({ server, onDone, onCancel }: { server: Server | null; onDone: () => void; onCancel: () => void }) {
  const { workspaceId } = useWorkspace()
  const [form] = Form.useForm<ServerCreate>()
  const path = { workspace_id: workspaceId }
  const save = useMutation({
    mutationFn: async (values: ServerCreate) => {
      const body = {
        ...values,
        username: values.username || null,
        from_name: values.from_name || null,
        reply_to: values.reply_to || null,
      }
      if (!server)
        return unwrap(api.POST('/api/v1/workspaces/{workspace_id}/email/servers', { params: { path }, body }))
      // Leaving the password out keeps it; only a typed one replaces it.
      const { password, ...rest } = body
      return unwrap(
        api.PATCH('/api/v1/workspaces/{workspace_id}/email/servers/{destination_id}', {
          params: { path: { ...path, destination_id: server.id } },
          body: password ? { ...rest, password } : rest,
        }),
      )
    },
    onSuccess: onDone,
  })
  return (
    <Modal
      open
      title={server ? `Change “${server.name}”` : 'Add an SMTP server'}
      okText={server ? 'Save' : 'Add server'}
      onOk={() => form.submit()}
      confirmLoading={save.isPending}
      onCancel={onCancel}
      width={640}
    >
      <ChangeFailed error={save.error} />
      <Form
        form={form}
        layout="vertical"
        initialValues={server ?? { port: 587, security: 'starttls' }}
        onFinish={(v) => save.mutate(v)}
        style={{ marginTop: 12 }}
      >
        <Form.Item label="Name" name="name" rules={[{ required: true, whitespace: true }]}>
          <Input placeholder="e.g. Postmark" />
        </Form.Item>
        <Row gutter={12}>
          <Col xs={24} sm={12}>
            <Form.Item label="Host" name="host" rules={[{ required: true, whitespace: true }]}>
              <Input placeholder="smtp.example.com" />
            </Form.Item>
          </Col>
          <Col xs={12} sm={5}>
            <Form.Item label="Port" name="port" rules={[{ required: true }]}>
              <InputNumber min={1} max={65535} style={{ width: '100%' }} />
            </Form.Item>
          </Col>
          <Col xs={12} sm={7}>
            <Form.Item label="Security" name="security">
              <Select options={SECURITY} />
            </Form.Item>
          </Col>
          <Col xs={24} sm={12}>
            <Form.Item label="User name" name="username">
              <Input autoComplete="off" />
            </Form.Item>
          </Col>
          <Col xs={24} sm={12}>
            <Form.Item
              label="Password"
              name="password"
              extra={server?.password_set ? 'A password is stored; leave blank to keep it.' : undefined}
            >
              <Input.Password autoComplete="new-password" />
            </Form.Item>
          </Col>
          <Col xs={24} sm={12}>
            <Form.Item label="From address" name="from_address" rules={[{ required: true, type: 'email' }]}>
              <Input placeholder="news@example.com" />
            </Form.Item>
          </Col>
          <Col xs={24} sm={12}>
            <Form.Item label="From name" name="from_name">
              <Input placeholder="Example Shop" />
            </Form.Item>
          </Col>
          <Col xs={24}>
            <Form.Item label="Reply-to address" name="reply_to" rules={[{ type: 'email' }]}>
              <Input />
            </Form.Item>
          </Col>
        </Row>
      </Form>
    </Modal>
  )
}

/** Send one message now and show what the server answered. */
function TestMail({ server, onClose }: { server: Server; onClose: () => void }) {
  const { workspaceId } = useWorkspace()
  const [to, setTo] = useState('')
  const send = useMutation({
    mutationFn: () =>
      unwrap(
        api.POST('/api/v1/workspaces/{workspace_id}/email/servers/{destination_id}/test', {
          params: { path: { workspace_id: workspaceId, destination_id: server.id } },
          body: { to },
        }),
      ),
  })
  const result: Sent | undefined = send.data
  return (
    <Modal
      open
      title={`Send a test through “${server.name}”`}
      okText="Send test"
      onOk={() => send.mutate()}
      okButtonProps={{ disabled: !to.includes('@') }}
      confirmLoading={send.isPending}
      onCancel={onClose}
      cancelText="Done"
    >
      <Space orientation="vertical" style={{ width: '100%' }}>
        <label htmlFor="smtp-test-to">Send to</label>
        <Input id="smtp-test-to" type="email" value={to} onChange={(e) => setTo(e.target.value)} placeholder="you@example.com" />
        <ChangeFailed error={send.error} />
        {result &&
          (result.status === 'sent' ? (
            <Alert type="success" showIcon title={`Sent to ${result.to_address}.`} description={result.message_id} />
          ) : (
            <Alert
              type="error"
              showIcon
              title={`The message was not sent (${result.status}).`}
              description={result.last_error ?? undefined}
            />
          ))}
      </Space>
    </Modal>
  )
}
