import { useState } from 'react'
import {
  Alert,
  Button,
  Form,
  Input,
  InputNumber,
  Result,
  Segmented,
  Select,
  Space,
  Typography,
} from 'antd'
import { useMutation, useQueryClient } from '@tanstack/react-query'
import { useNavigate } from 'react-router-dom'
import { api, unwrap } from '../../api/client'
import type { components } from '../../api/schema'
import { Query } from '../../ui/states'
import { count } from '../../ui/format'
import { field, useStats } from './data'
import { useSegments } from '../../ui/workspace'

type Format = components['schemas']['ExportCreate']['format']
type Made =
  | { kind: 'campaign'; value: components['schemas']['CampaignPublic'] }
  | { kind: 'export'; value: components['schemas']['ExportPublic'] }

const FORMATS: Record<Format, string> = {
  csv: 'CSV with every attribute',
  mailchimp: 'Mailchimp audience',
  klaviyo: 'Klaviyo list',
  hubspot: 'HubSpot contacts',
  google: 'Google Customer Match',
  google_hashed: 'Google Customer Match (hashed)',
  meta: 'Meta Custom Audience (hashed)',
}

type Values = {
  segment_id: number
  name: string
  does: 'export' | 'tag'
  tag?: string
  holdout_percent: number
  goal_event?: string
  format: Format
}

const required = (message: string) => [{ required: true, whitespace: true, message }]

/** Step 7: a first campaign (with a holdout to measure it) or an export file of a segment. */
export function ActionStep({ workspaceId }: { workspaceId: number }) {
  const [kind, setKind] = useState<'campaign' | 'export'>('campaign')
  const [made, setMade] = useState<Made | null>(null)
  const [form] = Form.useForm<Values>()
  const does = Form.useWatch('does', form)
  const stats = useStats(workspaceId)
  const client = useQueryClient()
  const path = { workspace_id: workspaceId }
  const segments = useSegments(workspaceId)
  const create = useMutation({
    mutationFn: async (v: Values): Promise<Made> => {
      if (kind === 'export') {
        const body = { segment_id: v.segment_id, format: v.format }
        return {
          kind,
          value: await unwrap(
            api.POST('/api/v1/workspaces/{workspace_id}/exports', { params: { path }, body }),
          ),
        }
      }
      const action = v.does === 'tag' ? { kind: 'tag', tag: v.tag } : { kind: 'export', format: 'csv' }
      const body = {
        name: v.name.trim(),
        segment_id: v.segment_id,
        action,
        holdout_percent: v.holdout_percent,
        goal_event: v.goal_event || null,
      }
      return {
        kind,
        value: await unwrap(
          api.POST('/api/v1/workspaces/{workspace_id}/campaigns', { params: { path }, body }),
        ),
      }
    },
    onSuccess: (result) => {
      setMade(result)
      const list = result.kind === 'campaign' ? 'campaigns' : 'exports'
      void client.invalidateQueries({ queryKey: [list, workspaceId] })
    },
  })
  const events = Object.keys((field(stats.data, 'events_by_type') ?? {}) as object)

  if (made) return <MadeResult made={made} workspaceId={workspaceId} onAnother={() => setMade(null)} />
  return (
    <Query query={segments} what="the segments">
      {(page) => (
        <Space orientation="vertical" size="middle" style={{ width: '100%', maxWidth: 640 }}>
          <Typography.Title level={4} style={{ margin: 0 }}>
            Act on a segment
          </Typography.Title>
          <Segmented
            aria-label="What to make"
            value={kind}
            onChange={(v) => setKind(v as 'campaign' | 'export')}
            options={[
              { value: 'campaign', label: 'A campaign' },
              { value: 'export', label: 'An export file' },
            ]}
          />
          <Typography.Text type="secondary">
            {kind === 'campaign'
              ? 'A campaign acts on the segment and keeps a random share of it aside, so you ' +
                'can see what it changed.'
              : 'A file of the segment’s customers, ready for your e-mail or ads tool.'}
          </Typography.Text>
          <Form
            form={form}
            layout="vertical"
            onFinish={create.mutate}
            initialValues={{
              does: 'export',
              holdout_percent: 10,
              format: 'csv',
              goal_event: events.includes('order') ? 'order' : undefined,
            }}
          >
            <Form.Item label="Segment" name="segment_id" rules={[{ required: true, message: 'Choose a segment.' }]}>
              <Select
                showSearch={{ optionFilterProp: 'label' }}
                placeholder="Choose a segment"
                options={page.items.map((s) => ({
                  value: s.id,
                  label: `${s.name} (${count(s.customers ?? 0)})`,
                }))}
                onChange={(id: number) => {
                  // Suggest a name until one is typed.
                  const name = page.items.find((s) => s.id === id)?.name
                  if (name && !form.isFieldTouched('name'))
                    form.setFieldValue('name', `First campaign: ${name}`)
                }}
              />
            </Form.Item>
            {kind === 'campaign' ? (
              <>
                <Form.Item label="Campaign name" name="name" rules={required('Name the campaign.')}>
                  <Input maxLength={180} />
                </Form.Item>
                <Form.Item label="What it does" name="does">
                  <Select
                    options={[
                      { value: 'export', label: 'Write the customers to a CSV file' },
                      { value: 'tag', label: 'Tag the customers' },
                    ]}
                  />
                </Form.Item>
                {does === 'tag' && (
                  <Form.Item label="Tag" name="tag" rules={required('Give the tag.')}>
                    <Input maxLength={100} placeholder="e.g. winback-2026" />
                  </Form.Item>
                )}
                <Form.Item
                  label="Held out (%)"
                  name="holdout_percent"
                  extra="Customers kept aside at random to measure the lift."
                >
                  <InputNumber min={0} max={90} />
                </Form.Item>
                <Form.Item
                  label="Success is"
                  name="goal_event"
                  extra="The event whose rate measures the campaign."
                >
                  <Select
                    allowClear
                    placeholder="No goal"
                    options={events.map((e) => ({ value: e, label: `an ${e} event` }))}
                  />
                </Form.Item>
              </>
            ) : (
              <Form.Item label="Format" name="format">
                <Select options={Object.entries(FORMATS).map(([value, label]) => ({ value, label }))} />
              </Form.Item>
            )}
            {create.isError && (
              <Alert type="error" showIcon title={create.error.message} style={{ marginBottom: 16 }} />
            )}
            <Button type="primary" htmlType="submit" loading={create.isPending}>
              {kind === 'campaign' ? 'Create the campaign' : 'Write the export'}
            </Button>
          </Form>
        </Space>
      )}
    </Query>
  )
}

/** What was made, with the way on: Actions, the file, or another one. */
function MadeResult({
  made,
  workspaceId,
  onAnother,
}: {
  made: Made
  workspaceId: number
  onAnother: () => void
}) {
  const another = (
    <Button key="another" onClick={onAnother}>
      Make another
    </Button>
  )
  if (made.kind === 'campaign') {
    const c = made.value
    return (
      <Result
        status="success"
        title={`Campaign “${c.name}” created`}
        subTitle={
          `For ${c.segment ?? 'the segment'}, with ${c.holdout_percent}% held out. It is a ` +
          `${c.status}: launch it from Actions when you are ready.`
        }
        extra={[
          <LinkButton key="actions" to={`/w/${workspaceId}/actions`} primary>
            Open Actions
          </LinkButton>,
          another,
        ]}
      />
    )
  }
  const e = made.value
  return (
    <Result
      status="success"
      title={`Export of ${e.segment ?? 'the segment'} written`}
      subTitle={`${count(e.rows)} customers in ${e.filename} (${FORMATS[e.format as Format] ?? e.format}).`}
      extra={[
        <Button
          key="download"
          type="primary"
          href={`/api/v1/workspaces/${workspaceId}/exports/${e.id}/download`}
          download
        >
          Download the file
        </Button>,
        <LinkButton key="actions" to={`/w/${workspaceId}/actions`}>
          Open Actions
        </LinkButton>,
        another,
      ]}
    />
  )
}

/** A link that looks like a button: opens in the app, or in a new tab like any link. */
function LinkButton({ to, primary, children }: { to: string; primary?: boolean; children: string }) {
  const navigate = useNavigate()
  return (
    <Button
      type={primary ? 'primary' : 'default'}
      href={to}
      onClick={(event) => {
        if (event.metaKey || event.ctrlKey || event.shiftKey) return
        event.preventDefault()
        navigate(to)
      }}
    >
      {children}
    </Button>
  )
}
