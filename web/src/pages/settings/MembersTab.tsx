import { useState } from 'react'
import { Alert, Button, Form, Input, Select, Space, Table, Typography } from 'antd'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { api, unwrap } from '../../api/client'
import type { components } from '../../api/schema'
import { Failed } from '../../ui/states'
import { ChangeFailed, Section } from './parts'
import { when } from '../../ui/format'
import { useWorkspace } from './common'
import { ConfirmButton } from '../../ui/ConfirmButton'

type Role = components['schemas']['MemberCreate']['role']
type Created = components['schemas']['MemberCreated']

// What each role may do, in the words of docs/api.md's table.
const ROLES: { value: Role; label: string; meaning: string }[] = [
  { value: 'owner', label: 'Owner', meaning: 'everything, including the plan and deleting the workspace' },
  { value: 'admin', label: 'Admin', meaning: 'members, API keys, destinations, approvals, data rights, audit log' },
  { value: 'analyst', label: 'Analyst', meaning: 'imports, segments, models and analyses' },
  { value: 'marketer', label: 'Marketer', meaning: 'automations, campaigns, syncs and exports' },
  { value: 'viewer', label: 'Viewer', meaning: 'reads everything, with personal data masked' },
]

function roleOptions(isOwner: boolean) {
  // Only an owner grants or takes away owner: the API refuses it to admins.
  return ROLES.map((r) => ({
    value: r.value,
    label: r.label,
    title: r.meaning,
    disabled: r.value === 'owner' && !isOwner,
  }))
}

/** Who has access to the workspace and with which role; owners and admins add people,
 * change roles and remove members. */
export default function MembersTab() {
  const { workspaceId, manages, isOwner, user } = useWorkspace()
  const client = useQueryClient()
  const key = ['settings-members', workspaceId]
  const path = { workspace_id: workspaceId }
  const members = useQuery({
    queryKey: key,
    queryFn: () =>
      unwrap(api.GET('/api/v1/workspaces/{workspace_id}/members', { params: { path, query: { limit: 500 } } })),
  })
  const changed = () => client.invalidateQueries({ queryKey: key })
  const changeRole = useMutation({
    mutationFn: ({ id, role }: { id: number; role: Role }) =>
      unwrap(
        api.PATCH('/api/v1/workspaces/{workspace_id}/members/{member_id}', {
          params: { path: { ...path, member_id: id } },
          body: { role },
        }),
      ),
    onSettled: changed,
  })
  const remove = useMutation({
    mutationFn: (id: number) =>
      unwrap(
        api.DELETE('/api/v1/workspaces/{workspace_id}/members/{member_id}', {
          params: { path: { ...path, member_id: id } },
        }),
      ),
    onSettled: changed,
  })

  const listed = members.data?.items ?? []
  return (
    <Space orientation="vertical" size="large" style={{ width: '100%' }}>
      <Section
        title="Members"
        intro="Everyone who can open this workspace, and what their role lets them do."
      >
        {user?.is_owner && !listed.some((m) => m.user_id === user.id) && (
          <Alert
            type="info"
            showIcon
            title={`You (${user.email}) are the installation's owner: owner in every workspace, so you are not listed.`}
          />
        )}
        {members.isError && <Failed error={members.error} />}
        <ChangeFailed error={changeRole.error ?? remove.error} />
        <Table
          rowKey="id"
          loading={members.isPending}
          dataSource={listed}
          pagination={{ pageSize: 25, hideOnSinglePage: true }}
          scroll={{ x: 'max-content' }}
          locale={{ emptyText: 'No members yet: add someone below.' }}
          columns={[
            {
              title: 'Member',
              dataIndex: 'email',
              sorter: (a, b) => a.email.localeCompare(b.email),
              render: (email: string, m) => (
                <Space orientation="vertical" size={0}>
                  <Typography.Text strong>{m.name || email}</Typography.Text>
                  {m.name && <Typography.Text type="secondary">{email}</Typography.Text>}
                </Space>
              ),
            },
            {
              title: 'Role',
              dataIndex: 'role',
              render: (role: Role, m) =>
                manages ? (
                  <Select
                    aria-label={`Role of ${m.email}`}
                    value={role}
                    style={{ width: 140 }}
                    options={roleOptions(isOwner)}
                    onChange={(next) => changeRole.mutate({ id: m.id, role: next })}
                  />
                ) : (
                  ROLES.find((r) => r.value === role)?.label ?? role
                ),
            },
            {
              title: 'What they can do',
              key: 'meaning',
              render: (_, m) => (
                <Typography.Text type="secondary">
                  {ROLES.find((r) => r.value === m.role)?.meaning}
                </Typography.Text>
              ),
            },
            { title: 'Member since', dataIndex: 'created_at', render: (t: string) => when(t) },
            ...(manages
              ? [
                  {
                    title: '',
                    key: 'remove',
                    render: (_: unknown, m: { id: number; email: string }) => (
                      <ConfirmButton
                        verb="Remove"
                        question={`Remove ${m.email}?`}
                        consequence="They lose access to this workspace at once."
                        onConfirm={() => remove.mutateAsync(m.id).catch(() => undefined)}
                        type="link"
                        aria-label={`Remove ${m.email}`}
                      />
                    ),
                  },
                ]
              : []),
          ]}
        />
      </Section>
      {manages && <AddMember onAdded={changed} isOwner={isOwner} />}
    </Space>
  )
}

function AddMember({ onAdded, isOwner }: { onAdded: () => void; isOwner: boolean }) {
  const { workspaceId } = useWorkspace()
  const [form] = Form.useForm<{ email: string; name?: string; role: Role }>()
  const [created, setCreated] = useState<Created | null>(null)
  const add = useMutation({
    mutationFn: (body: { email: string; name?: string; role: Role }) =>
      unwrap(
        api.POST('/api/v1/workspaces/{workspace_id}/members', {
          params: { path: { workspace_id: workspaceId } },
          body: { ...body, name: body.name || null },
        }),
      ),
    onSuccess: (member) => {
      setCreated(member)
      form.resetFields()
      onAdded()
    },
  })
  return (
    <Section
      title="Add a member"
      intro="Someone new gets an account with a generated password, shown once below; someone who already has an account here simply gets the role."
    >
      {created && (
        <Alert
          type="success"
          showIcon
          closable={{ onClose: () => setCreated(null) }}
          title={`${created.email} is now ${created.role} of this workspace.`}
          description={
            created.password ? (
              <span>
                Their password, shown only this once:{' '}
                <Typography.Text code copyable aria-label="New member's password">
                  {created.password}
                </Typography.Text>
              </span>
            ) : undefined
          }
        />
      )}
      <ChangeFailed error={add.error} />
      <Form
        form={form}
        layout="vertical"
        initialValues={{ role: 'analyst' }}
        onFinish={(values) => add.mutate(values)}
        requiredMark="optional"
      >
        <Space wrap align="end" size="middle">
          <Form.Item
            label="E-mail"
            name="email"
            rules={[{ required: true, type: 'email', message: 'Give an e-mail address.' }]}
            style={{ marginBottom: 0, minWidth: 260 }}
          >
            <Input autoComplete="off" />
          </Form.Item>
          <Form.Item label="Name" name="name" style={{ marginBottom: 0, minWidth: 200 }}>
            <Input autoComplete="off" />
          </Form.Item>
          <Form.Item label="Role" name="role" rules={[{ required: true }]} style={{ marginBottom: 0 }}>
            <Select style={{ width: 160 }} options={roleOptions(isOwner)} />
          </Form.Item>
          <Button type="primary" htmlType="submit" loading={add.isPending}>
            Add member
          </Button>
        </Space>
      </Form>
    </Section>
  )
}
