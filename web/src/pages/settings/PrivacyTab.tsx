import { useState } from 'react'
import { Alert, Button, Checkbox, Col, InputNumber, Row, Select, Space, Tag, Typography } from 'antd'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { api, unwrap } from '../../api/client'
import type { components } from '../../api/schema'
import { Query } from '../../ui/states'
import RightsRequests from './RightsRequests'
import { ChangeFailed, NotAllowed, Section } from './parts'
import { count, when } from '../../ui/format'
import { useWorkspace } from './common'

type Fields = components['schemas']['PersonalFieldsPublic']

/** Data rights and personal data: requests, event retention and personal fields. */
export default function PrivacyTab() {
  const { manages } = useWorkspace()
  if (!manages) return <NotAllowed what="answer data rights requests and set retention" />
  return (
    <Space orientation="vertical" size="large" style={{ width: '100%' }}>
      <RightsRequests />
      <Row gutter={[24, 24]}>
        <Col xs={24} lg={10}>
          <Retention />
        </Col>
        <Col xs={24} lg={14}>
          <PersonalFields />
        </Col>
      </Row>
    </Space>
  )
}

function Retention() {
  const { workspaceId } = useWorkspace()
  const path = { workspace_id: workspaceId }
  const key = ['settings-retention', workspaceId]
  const settings = useQuery({
    queryKey: key,
    queryFn: () => unwrap(api.GET('/api/v1/workspaces/{workspace_id}/privacy/settings', { params: { path } })),
  })
  return (
    <Section
      title="Event retention"
      intro="Events older than this are deleted, with the messages and firings about them. The server applies it every hour."
    >
      <Query query={settings} what="the retention">
        {(current) => <RetentionForm stored={current.retention_days ?? null} />}
      </Query>
    </Section>
  )
}

/** The retention being edited, starting from the stored one. */
function RetentionForm({ stored }: { stored: number | null }) {
  const { workspaceId } = useWorkspace()
  const client = useQueryClient()
  const path = { workspace_id: workspaceId }
  const [days, setDays] = useState<number | null>(stored)
  const save = useMutation({
    mutationFn: () =>
      unwrap(
        api.PUT('/api/v1/workspaces/{workspace_id}/privacy/settings', { params: { path }, body: { retention_days: days } }),
      ),
    onSuccess: (answer) => client.setQueryData(['settings-retention', workspaceId], answer),
  })
  const run = useMutation({
    mutationFn: () => unwrap(api.POST('/api/v1/workspaces/{workspace_id}/privacy/retention/run', { params: { path } })),
  })
  const deleted = run.data
    ? Object.values({ ...run.data.warehouse, ...run.data.catalog }).reduce((a, b) => a + b, 0)
    : 0
  return (
    <Space orientation="vertical" style={{ width: '100%' }}>
      <Checkbox checked={days === null} onChange={(e) => setDays(e.target.checked ? null : 365)}>
        Keep events forever
      </Checkbox>
      {days !== null && (
        <Space wrap>
          <label htmlFor="retention-days">Delete events older than</label>
          <InputNumber id="retention-days" min={1} value={days} onChange={(d) => setDays(d ?? 1)} />
          <span>days</span>
        </Space>
      )}
      <Space wrap>
        <Button
          type="primary"
          onClick={() => save.mutate()}
          loading={save.isPending}
          disabled={days === stored}
        >
          Save retention
        </Button>
        <Button onClick={() => run.mutate()} loading={run.isPending} disabled={stored == null}>
          Apply now
        </Button>
      </Space>
      <ChangeFailed error={save.error ?? run.error} />
      {run.data && (
        <Alert
          type="success"
          showIcon
          title={`${count(deleted)} rows deleted${run.data.cutoff ? `: everything before ${when(run.data.cutoff)}` : ''}.`}
        />
      )}
    </Space>
  )
}

function PersonalFields() {
  const { workspaceId } = useWorkspace()
  const client = useQueryClient()
  const path = { workspace_id: workspaceId }
  const key = ['settings-personal-fields', workspaceId]
  const fields = useQuery({
    queryKey: key,
    queryFn: () => unwrap(api.GET('/api/v1/workspaces/{workspace_id}/personal-fields', { params: { path } })),
  })
  return (
    <Section
      title="Personal fields"
      intro="Customer columns holding personal data are masked for viewers and in what they download."
    >
      <Query query={fields} what="the personal fields">
        {(f) => <PersonalFieldsForm fields={f} onSaved={(answer) => client.setQueryData(key, answer)} />}
      </Query>
    </Section>
  )
}

/** The columns marked personal being edited, starting from the stored list. */
function PersonalFieldsForm({ fields: f, onSaved }: { fields: Fields; onSaved: (answer: Fields) => void }) {
  const { workspaceId } = useWorkspace()
  const [marked, setMarked] = useState<string[]>(f.marked)
  const save = useMutation({
    mutationFn: () =>
      unwrap(
        api.PUT('/api/v1/workspaces/{workspace_id}/personal-fields', {
          params: { path: { workspace_id: workspaceId } },
          body: { marked },
        }),
      ),
    onSuccess: onSaved,
  })
  return (
    <Space orientation="vertical" style={{ width: '100%' }}>
      <div>
        <Typography.Text strong>Personal here now: </Typography.Text>
        {f.customer_columns.length === 0
          ? 'none'
          : f.customer_columns.map((c) => (
              <Tag key={c} color="purple">
                {c}
              </Tag>
            ))}
      </div>
      <Typography.Text type="secondary">
        Always personal: {f.defaults.join(', ')}; and {f.patterns}.
      </Typography.Text>
      <label htmlFor="marked-fields">
        <Typography.Text strong>Also mark as personal</Typography.Text>
      </label>
      <Select
        id="marked-fields"
        mode="tags"
        value={marked}
        onChange={setMarked}
        placeholder="Column names, e.g. loyalty_card"
        style={{ width: '100%' }}
        tokenSeparators={[',', ' ']}
      />
      <Button
        type="primary"
        onClick={() => save.mutate()}
        loading={save.isPending}
        disabled={marked.join() === f.marked.join()}
      >
        Save personal fields
      </Button>
      <ChangeFailed error={save.error} />
    </Space>
  )
}
