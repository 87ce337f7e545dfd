import { useState } from 'react'
import { Alert, AutoComplete, Button, Card, Col, Form, Input, InputNumber, Row, Space, Table } from 'antd'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { Link } from 'react-router-dom'
import { api, unwrap } from '../../api/client'
import { Failed, Nothing } from '../../ui/states'
import { actionBody, type ActionValues } from './action'
import { ActionFields } from './ActionFields'
import { type Campaign, CampaignButtons } from './CampaignButtons'
import { points, when } from '../../ui/format'
import { analysis, useWorkspaceId } from '../../ui/workspace'
import { useChosenSegment } from './hooks'
import { type Notice, NoticeBar, SegmentSelect, StatusTag } from './shared'

/** Campaigns: an action on a segment with a holdout, and the lift it measured. */
export function CampaignsTab() {
  const workspaceId = useWorkspaceId()
  const [notice, setNotice] = useState<Notice | null>(null)
  const campaigns = useQuery({
    queryKey: ['campaigns', workspaceId],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/campaigns', {
          params: { path: { workspace_id: workspaceId }, query: { limit: 500 } },
        }),
      ),
  })
  return (
    <Space orientation="vertical" size="large" style={{ width: '100%' }}>
      <NewCampaign
        workspaceId={workspaceId}
        onCreated={(c) => setNotice({ type: 'success', text: `${c.name} is saved as a draft: launch it when ready.` })}
      />
      <NoticeBar notice={notice} onClose={() => setNotice(null)} />
      {campaigns.isError ? (
        <Failed error={campaigns.error} />
      ) : (
        <Table<Campaign>
          rowKey="id"
          loading={campaigns.isPending}
          dataSource={campaigns.data?.items ?? []}
          pagination={{ pageSize: 25, hideOnSinglePage: true }}
          scroll={{ x: 'max-content' }}
          locale={{ emptyText: <Nothing>No campaigns yet: make one above to measure what an action is worth.</Nothing> }}
          columns={[
            {
              title: 'Campaign',
              dataIndex: 'name',
              render: (name: string, c) => <Link to={`/w/${workspaceId}/actions/campaigns/${c.id}`}>{name}</Link>,
            },
            { title: 'Segment', dataIndex: 'segment', render: (s: string | null) => s ?? 'deleted' },
            { title: 'Action', dataIndex: 'kind' },
            { title: 'Holdout', dataIndex: 'holdout_percent', align: 'right', render: (p: number) => `${p}%` },
            { title: 'Goal', dataIndex: 'goal_event', render: (g: string | null) => g ?? 'none' },
            { title: 'Status', dataIndex: 'status', render: (s: string) => <StatusTag status={s} /> },
            { title: 'Started', dataIndex: 'started_at', render: (t: string | null) => when(t, 'not yet') },
            { title: 'Ended', dataIndex: 'ended_at', render: (t: string | null) => when(t) },
            {
              title: 'Lift',
              key: 'lift',
              align: 'right',
              render: (_, c) =>
                c.results?.lift != null ? (
                  points(c.results.lift)
                ) : c.status === 'running' ? (
                  <Link to={`/w/${workspaceId}/actions/campaigns/${c.id}`}>measure now</Link>
                ) : (
                  '–'
                ),
            },
            {
              title: '',
              key: 'buttons',
              render: (_, c) => <CampaignButtons workspaceId={workspaceId} campaign={c} onNotice={setNotice} />,
            },
          ]}
        />
      )}
    </Space>
  )
}

type NewValues = { name: string; segment_id: number; holdout_percent: number; goal_event?: string; action: ActionValues }

/** The event types customers send, most common first: the goal a campaign is measured on. */
function useEventTypes(workspaceId: number) {
  return useQuery({
    queryKey: ['analyses', workspaceId, 'event-mix', 'types for campaigns'],
    queryFn: async () => {
      const mix = await analysis(
        api.GET('/api/v1/workspaces/{workspace_id}/analyses/event-mix', {
          params: { path: { workspace_id: workspaceId } },
        }),
      )
      const rows = (Object.values(mix.tables)[0]?.rows ?? []) as { event_type?: string }[]
      return rows.flatMap((r) => (r.event_type ? [r.event_type] : []))
    },
  })
}

function NewCampaign({ workspaceId, onCreated }: { workspaceId: number; onCreated: (c: Campaign) => void }) {
  const [form] = Form.useForm<NewValues>()
  const chosen = useChosenSegment()
  const client = useQueryClient()
  const events = useEventTypes(workspaceId)
  const create = useMutation({
    mutationFn: (v: NewValues) =>
      unwrap(
        api.POST('/api/v1/workspaces/{workspace_id}/campaigns', {
          params: { path: { workspace_id: workspaceId } },
          body: {
            name: v.name,
            segment_id: v.segment_id,
            holdout_percent: v.holdout_percent,
            goal_event: v.goal_event?.trim() || null,
            action: actionBody(v.action),
          },
        }),
      ),
    onSuccess: (created) => {
      onCreated(created)
      form.resetFields()
      return client.invalidateQueries({ queryKey: ['campaigns', workspaceId] })
    },
  })
  return (
    <Card title="New campaign" size="small">
      <Form
        form={form}
        layout="vertical"
        requiredMark="optional"
        initialValues={{ holdout_percent: 10, segment_id: chosen }}
        onFinish={(v) => create.mutate(v)}
      >
        <Row gutter={16}>
          <Col xs={24} md={6}>
            <Form.Item label="Name" name="name" rules={[{ required: true, message: 'Name the campaign' }]}>
              <Input placeholder="Spring offer" maxLength={180} />
            </Form.Item>
          </Col>
          <Col xs={24} md={8}>
            <Form.Item label="Segment" name="segment_id" rules={[{ required: true, message: 'Choose a segment' }]}>
              <SegmentSelect workspaceId={workspaceId} placeholder="Who it is for" />
            </Form.Item>
          </Col>
          <Col xs={12} md={4}>
            <Form.Item
              label="Holdout (%)"
              name="holdout_percent"
              extra="Left out, to compare with."
              rules={[{ required: true, message: 'Give a holdout from 0 to 90%' }]}
            >
              <InputNumber min={0} max={90} step={5} style={{ width: '100%' }} />
            </Form.Item>
          </Col>
          <Col xs={12} md={6}>
            <Form.Item label="Goal event" name="goal_event" extra="Converted: did it after the launch.">
              <AutoComplete
                placeholder="order"
                options={(events.data ?? []).map((e) => ({ value: e }))}
                showSearch={{
                  filterOption: (input, option) =>
                    String(option?.value ?? '').toLowerCase().includes(input.toLowerCase()),
                }}
              />
            </Form.Item>
          </Col>
        </Row>
        <ActionFields workspaceId={workspaceId} form={form} />
        {create.isError && <Alert type="error" showIcon title={create.error.message} style={{ marginBottom: 16 }} />}
        <Button type="primary" htmlType="submit" loading={create.isPending}>
          Create draft
        </Button>
      </Form>
    </Card>
  )
}
