import { useState } from 'react'
import {
  Alert,
  Button,
  Card,
  Checkbox,
  Col,
  Form,
  Input,
  InputNumber,
  Radio,
  Row,
  Select,
  Space,
  Table,
  Tag,
  Typography,
} from 'antd'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { Link } from 'react-router-dom'
import { api, unwrap } from '../../api/client'
import type { components } from '../../api/schema'
import { Failed, Nothing } from '../../ui/states'
import { actionBody, actionText, type ActionValues } from './action'
import { ActionFields } from './ActionFields'
import { type Automation, triggerText } from './automation'
import { AutomationButtons, FiringCounts } from './AutomationButtons'
import { useWorkspaceId } from '../../ui/workspace'
import { useDestinations, useChosenSegment } from './hooks'
import { type Notice, NoticeBar, SegmentSelect, StatusTag } from './shared'

/** The automations: when each acts, on which segment, what it does, whether it is on and
 * what its firings came to; a form makes a new one. */
export function AutomationsTab() {
  const workspaceId = useWorkspaceId()
  const [notice, setNotice] = useState<Notice | null>(null)
  const destinations = useDestinations(workspaceId)
  const automations = useQuery({
    queryKey: ['automations', workspaceId],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/automations', {
          params: { path: { workspace_id: workspaceId }, query: { limit: 500 } },
        }),
      ),
  })
  return (
    <Space orientation="vertical" size="large" style={{ width: '100%' }}>
      <NewAutomation
        workspaceId={workspaceId}
        onCreated={(name) => setNotice({ type: 'success', text: `${name} is saved and listening.` })}
      />
      <NoticeBar notice={notice} onClose={() => setNotice(null)} />
      {automations.isError ? (
        <Failed error={automations.error} />
      ) : (
        <Table<Automation>
          rowKey="id"
          loading={automations.isPending}
          dataSource={automations.data?.items ?? []}
          pagination={{ pageSize: 25, hideOnSinglePage: true }}
          scroll={{ x: 'max-content' }}
          locale={{
            emptyText: <Nothing>No automations yet: make one above to act when customers move.</Nothing>,
          }}
          columns={[
            {
              title: 'Automation',
              dataIndex: 'name',
              render: (name: string, a) => (
                <Link to={`/w/${workspaceId}/actions/automations/${a.id}`}>{name}</Link>
              ),
            },
            { title: 'Segment', dataIndex: 'segment', render: (s: string | null) => s ?? 'deleted' },
            { title: 'When a customer…', key: 'when', render: (_, a) => triggerText(a) },
            {
              title: 'Does',
              dataIndex: 'action',
              render: (action: Record<string, unknown>) => actionText(action, destinations),
            },
            {
              title: 'Status',
              dataIndex: 'status',
              render: (status: string, a) => (
                <Space size={0}>
                  <StatusTag status={status} />
                  {a.review_status === 'draft' && <Tag color="orange">waiting for approval</Tag>}
                </Space>
              ),
            },
            { title: 'Firings', dataIndex: 'firings', render: (f: Record<string, number>) => <FiringCounts firings={f} /> },
            {
              title: '',
              key: 'buttons',
              render: (_, a) => <AutomationButtons workspaceId={workspaceId} automation={a} onNotice={setNotice} />,
            },
          ]}
        />
      )}
    </Space>
  )
}

type NewValues = {
  name: string
  segment_id: number
  trigger: 'enter' | 'exit' | 'schedule'
  wait?: number
  wait_unit: number
  every_minutes?: number
  condition?: string
  paused?: boolean
  action: ActionValues
}

const WAIT_UNITS = [
  { value: 60, label: 'minutes' },
  { value: 3600, label: 'hours' },
  { value: 86400, label: 'days' },
]

const CONDITION_EXAMPLE = '{"type": "attribute", "attribute": "country", "op": "eq", "value": "GB"}'

/** The form over the automation's schema: when → optional wait and condition → do. */
function NewAutomation({ workspaceId, onCreated }: { workspaceId: number; onCreated: (name: string) => void }) {
  const [form] = Form.useForm<NewValues>()
  const chosen = useChosenSegment()
  const client = useQueryClient()
  const trigger = Form.useWatch('trigger', form)
  const create = useMutation({
    mutationFn: (v: NewValues) => {
      const body: components['schemas']['AutomationCreate'] = {
        name: v.name,
        segment_id: v.segment_id,
        trigger: v.trigger,
        action: actionBody(v.action),
        status: v.paused ? 'paused' : 'active',
        condition: v.condition?.trim() ? JSON.parse(v.condition) : undefined,
        every_minutes: v.trigger === 'schedule' ? v.every_minutes : undefined,
        wait_seconds: v.trigger === 'schedule' ? 0 : (v.wait ?? 0) * v.wait_unit,
      }
      return unwrap(
        api.POST('/api/v1/workspaces/{workspace_id}/automations', {
          params: { path: { workspace_id: workspaceId } },
          body,
        }),
      )
    },
    onSuccess: (created) => {
      onCreated(created.name)
      form.resetFields()
      return client.invalidateQueries({ queryKey: ['automations', workspaceId] })
    },
  })

  return (
    <Card title="New automation" size="small">
      <Form
        form={form}
        layout="vertical"
        requiredMark="optional"
        initialValues={{ trigger: 'enter', wait: 0, wait_unit: 3600, every_minutes: 1440, segment_id: chosen }}
        onFinish={(v) => create.mutate(v)}
      >
        <Row gutter={16}>
          <Col xs={24} md={8}>
            <Form.Item label="Name" name="name" rules={[{ required: true, message: 'Name the automation' }]}>
              <Input placeholder="Welcome new champions" maxLength={200} />
            </Form.Item>
          </Col>
          <Col xs={24} md={8}>
            <Form.Item label="Segment" name="segment_id" rules={[{ required: true, message: 'Choose a segment' }]}>
              <SegmentSelect workspaceId={workspaceId} placeholder="Which segment" />
            </Form.Item>
          </Col>
          <Col xs={24} md={8}>
            <Form.Item label="When a customer" name="trigger" rules={[{ required: true }]}>
              <Radio.Group
                optionType="button"
                options={[
                  { value: 'enter', label: 'enters' },
                  { value: 'exit', label: 'leaves' },
                  { value: 'schedule', label: 'on a schedule' },
                ]}
              />
            </Form.Item>
          </Col>
          {trigger === 'schedule' ? (
            <Col xs={24} md={8}>
              <Form.Item
                label="Every (minutes)"
                name="every_minutes"
                rules={[{ required: true, message: 'Say how often' }]}
                extra="Each run acts on every member; 1440 is once a day."
              >
                <InputNumber min={5} max={527040} style={{ width: '100%' }} />
              </Form.Item>
            </Col>
          ) : (
            <Col xs={24} md={8}>
              <Form.Item label="Wait before acting" extra="Then acts only if the customer still qualifies.">
                <Space.Compact style={{ width: '100%' }}>
                  <Form.Item name="wait" noStyle>
                    <InputNumber min={0} aria-label="Wait" style={{ width: '60%' }} />
                  </Form.Item>
                  <Form.Item name="wait_unit" noStyle>
                    <Select aria-label="Wait unit" options={WAIT_UNITS} style={{ width: '40%' }} />
                  </Form.Item>
                </Space.Compact>
              </Form.Item>
            </Col>
          )}
          <Col xs={24} md={16}>
            <Form.Item
              label="Only if (a rule, as in segment definitions)"
              name="condition"
              extra={`Optional, checked when it acts. E.g. ${CONDITION_EXAMPLE}`}
              rules={[
                {
                  validator: async (_, text?: string) => {
                    if (!text?.trim()) return
                    try {
                      JSON.parse(text)
                    } catch {
                      throw new Error('The rule is not valid JSON')
                    }
                  },
                },
              ]}
            >
              <Input.TextArea rows={1} autoSize={{ minRows: 1, maxRows: 6 }} placeholder="No condition" />
            </Form.Item>
          </Col>
        </Row>
        <ActionFields workspaceId={workspaceId} form={form} />
        <Form.Item name="paused" valuePropName="checked">
          <Checkbox>Save it paused</Checkbox>
        </Form.Item>
        {create.isError && <Alert type="error" showIcon title={create.error.message} style={{ marginBottom: 16 }} />}
        <Typography.Paragraph type="secondary">
          It listens from the moment it is saved: earlier entries are not replayed.
        </Typography.Paragraph>
        <Button type="primary" htmlType="submit" loading={create.isPending}>
          Create automation
        </Button>
      </Form>
    </Card>
  )
}
