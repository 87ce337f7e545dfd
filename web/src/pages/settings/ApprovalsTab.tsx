import { useState } from 'react'
import { Alert, Button, Card, Drawer, Input, Modal, Space, Switch, Table, Tag, Typography } from 'antd'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { Link } from 'react-router-dom'
import { api, unwrap } from '../../api/client'
import type { components } from '../../api/schema'
import { Nothing, Query } from '../../ui/states'
import { diff, review, versions, type ObjectType } from './approvals'
import { ChangeFailed, Section } from './parts'
import { when } from '../../ui/format'
import { useWorkspace } from './common'

type Pending = components['schemas']['Pending']
type Change = components['schemas']['Change']

const STATUS_COLOR: Record<string, string> = {
  draft: 'orange',
  approved: 'success',
  rejected: 'error',
  superseded: 'default',
}

/** Four eyes: whether changes that send data out wait for an owner's or admin's approval,
 * what waits now (with its diff) to approve or reject, and each object's history. */
export default function ApprovalsTab() {
  const { workspaceId } = useWorkspace()
  const approvals = useQuery({
    queryKey: ['settings-approvals', workspaceId],
    queryFn: () =>
      unwrap(api.GET('/api/v1/workspaces/{workspace_id}/approvals', { params: { path: { workspace_id: workspaceId } } })),
  })
  return (
    <Query query={approvals} what="approvals">
      {(data) => (
        <Space orientation="vertical" size="large" style={{ width: '100%' }}>
          <Setting on={data.require_approval} />
          <Waiting pending={data.pending} />
        </Space>
      )}
    </Query>
  )
}

function Setting({ on }: { on: boolean }) {
  const { workspaceId, manages } = useWorkspace()
  const client = useQueryClient()
  const set = useMutation({
    mutationFn: (require_approval: boolean) =>
      unwrap(
        api.PUT('/api/v1/workspaces/{workspace_id}/approvals/settings', {
          params: { path: { workspace_id: workspaceId } },
          body: { require_approval },
        }),
      ),
    onSettled: () => client.invalidateQueries({ queryKey: ['settings-approvals', workspaceId] }),
  })
  return (
    <Section
      title="Require approval"
      intro="With approval on, a new or changed sync, an automation that sends (webhook, e-mail, export) and a segment such a one uses wait as drafts until another owner or admin approves them. Nobody approves their own change."
    >
      <Space align="center" wrap>
        <Switch
          id="require-approval"
          checked={on}
          loading={set.isPending}
          disabled={!manages}
          onChange={(next) => set.mutate(next)}
        />
        <label htmlFor="require-approval">
          <Typography.Text strong>
            {on ? 'Changes that send data out wait for approval' : 'Changes act at once (approval is off)'}
          </Typography.Text>
        </label>
      </Space>
      <Typography.Text type="secondary">
        {on
          ? 'Turning it off approves nothing: drafts waiting now still wait.'
          : 'Turning it on puts nothing into review: what exists now stays approved.'}
      </Typography.Text>
      {!manages && <Typography.Text type="secondary">Only owners and admins turn approvals on or off.</Typography.Text>}
      <ChangeFailed error={set.error} />
    </Section>
  )
}

function Waiting({ pending }: { pending: Pending[] }) {
  const { workspaceId, manages, user } = useWorkspace()
  const client = useQueryClient()
  const [deciding, setDeciding] = useState<{ item: Pending; decision: 'approve' | 'reject' } | null>(null)
  const [history, setHistory] = useState<Pending | null>(null)
  const [done, setDone] = useState<string | null>(null)
  return (
    <Section
      title={`Waiting for approval (${pending.length})`}
      intro="Each change is shown against the object's last approved version."
    >
      {done && <Alert type="success" showIcon closable={{ onClose: () => setDone(null) }} title={done} />}
      {pending.length === 0 && <Nothing>Nothing waits for approval.</Nothing>}
      {pending.map((item) => (
        <Card
          key={`${item.object_type}-${item.object_id}`}
          size="small"
          aria-label={`${item.object_type} ${item.name}`}
          title={
            <Space wrap>
              <Tag>{item.object_type}</Tag>
              <ObjectName item={item} />
            </Space>
          }
          extra={
            <Space wrap>
              <Button type="link" onClick={() => setHistory(item)}>
                History
              </Button>
              {manages && (
                <>
                  <Button type="primary" onClick={() => setDeciding({ item, decision: 'approve' })}>
                    Approve
                  </Button>
                  <Button danger onClick={() => setDeciding({ item, decision: 'reject' })}>
                    Reject
                  </Button>
                </>
              )}
            </Space>
          }
          styles={{ header: { flexWrap: 'wrap', gap: 8 } }}
        >
          <Typography.Paragraph type="secondary">
            Version {item.version}
            {item.approved_version ? ` against approved version ${item.approved_version}` : ', never approved'}, changed{' '}
            {when(item.created_at)}
            {item.created_by === user?.id ? ' by you' : ''}.
          </Typography.Paragraph>
          <Changes changes={item.changes} />
        </Card>
      ))}
      {deciding && (
        <Decide
          {...deciding}
          onClose={(message) => {
            setDeciding(null)
            if (message) {
              setDone(message)
              client.invalidateQueries({ queryKey: ['settings-approvals', workspaceId] })
            }
          }}
        />
      )}
      {history && <History item={history} onClose={() => setHistory(null)} />}
    </Section>
  )
}

function ObjectName({ item }: { item: Pending }) {
  const { workspaceId } = useWorkspace()
  if (item.object_type === 'segment')
    return <Link to={`/w/${workspaceId}/segments/${item.object_id}`}>{item.name}</Link>
  return <Typography.Text strong>{item.object_type === 'sync' ? `sync ${item.name}` : item.name}</Typography.Text>
}

function show(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value)
}

/** A diff as a person would write it: ~ changed, + added, − removed. */
function Changes({ changes }: { changes: Change[] }) {
  if (changes.length === 0) return <Typography.Text type="secondary">No field changed.</Typography.Text>
  return (
    <ul aria-label="Changes" style={{ margin: 0, paddingLeft: 18, fontFamily: 'monospace', fontSize: 13 }}>
      {changes.map((c, i) => (
        <li key={i} style={{ wordBreak: 'break-word' }}>
          {c.change === 'changed' && `~ ${c.path}: ${show(c.old)} → ${show(c.new)}`}
          {c.change === 'added' && `+ ${c.path}: ${show(c.new)}`}
          {c.change === 'removed' && `− ${c.path}: ${show(c.old)}`}
        </li>
      ))}
    </ul>
  )
}

function Decide({
  item,
  decision,
  onClose,
}: {
  item: Pending
  decision: 'approve' | 'reject'
  onClose: (message?: string) => void
}) {
  const { workspaceId } = useWorkspace()
  const [note, setNote] = useState('')
  const act = useMutation({
    mutationFn: () => review(workspaceId, item.object_type as ObjectType, item.object_id, decision, note.trim() || null),
    onSuccess: (v) =>
      onClose(
        decision === 'approve'
          ? `Approved version ${v.version} of ${item.object_type} ${item.name}.`
          : `Rejected the change to ${item.object_type} ${item.name}.`,
      ),
  })
  const approving = decision === 'approve'
  return (
    <Modal
      open
      title={`${approving ? 'Approve' : 'Reject'} the change to ${item.object_type} ${item.name}`}
      okText={approving ? 'Approve' : 'Reject'}
      okButtonProps={{ danger: !approving, disabled: !approving && !note.trim() }}
      confirmLoading={act.isPending}
      onOk={() => act.mutate()}
      onCancel={() => onClose()}
    >
      <Space orientation="vertical" style={{ width: '100%' }}>
        <Typography.Text type="secondary">
          {approving
            ? 'It acts again at once, as it now is.'
            : 'Its last approved version is restored; one never approved stays a draft.'}
        </Typography.Text>
        <label htmlFor="review-note">{approving ? 'Note (optional)' : 'Reason'}</label>
        <Input.TextArea id="review-note" rows={3} value={note} onChange={(e) => setNote(e.target.value)} maxLength={2000} />
        <ChangeFailed error={act.error} />
      </Space>
    </Modal>
  )
}

function History({ item, onClose }: { item: Pending; onClose: () => void }) {
  const { workspaceId } = useWorkspace()
  const type = item.object_type as ObjectType
  const list = useQuery({
    queryKey: ['settings-versions', workspaceId, type, item.object_id],
    queryFn: () => versions(workspaceId, type, item.object_id),
  })
  return (
    <Drawer open title={`History of ${item.object_type} ${item.name}`} onClose={onClose} size="large">
      <Query query={list} what="the versions">
        {(rows) => (
          <Table
            rowKey="version"
            size="small"
            dataSource={[...rows].reverse()}
            pagination={false}
            scroll={{ x: 'max-content' }}
            expandable={{ expandedRowRender: (v) => <VersionDiff type={type} id={item.object_id} version={v.version} /> }}
            columns={[
              { title: 'Version', dataIndex: 'version' },
              {
                title: 'Status',
                dataIndex: 'status',
                render: (s: string) => <Tag color={STATUS_COLOR[s]}>{s}</Tag>,
              },
              { title: 'Saved', dataIndex: 'created_at', render: (t: string) => when(t) },
              { title: 'Reviewed', dataIndex: 'reviewed_at', render: (t: string | null) => when(t) },
              { title: 'Note', dataIndex: 'note', render: (n: string | null) => n ?? '' },
            ]}
          />
        )}
      </Query>
    </Drawer>
  )
}

/** What one version changed from the one before it (version 1: everything added). */
function VersionDiff({ type, id, version }: { type: ObjectType; id: number; version: number }) {
  const { workspaceId } = useWorkspace()
  const changes = useQuery({
    queryKey: ['settings-diff', workspaceId, type, id, version],
    queryFn: () => diff(workspaceId, type, id, version - 1, version),
  })
  return <Query query={changes} what="the changes">{(d) => <Changes changes={d.changes} />}</Query>
}
