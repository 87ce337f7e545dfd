import { useState } from 'react'
import { Alert, Button, Form, Input, Radio, Space, Typography } from 'antd'
import { useMutation, useQueryClient } from '@tanstack/react-query'
import { useNavigate } from 'react-router-dom'
import { api, unwrap } from '../../api/client'
import { useMe } from '../../me'
import { count, day } from '../../ui/format'
import { num, text, useStats } from './data'

/** Step 1: import into this workspace, or make a new one and carry on there. */
export function WorkspaceStep({ workspaceId, onNext }: { workspaceId: number; onNext: () => void }) {
  const me = useMe()
  const stats = useStats(workspaceId)
  const [choice, setChoice] = useState<'this' | 'new'>('this')
  const navigate = useNavigate()
  const client = useQueryClient()
  const create = useMutation({
    mutationFn: (values: { name: string; industry?: string }) =>
      unwrap(
        api.POST('/api/v1/workspaces', {
          body: { name: values.name.trim(), industry: values.industry || null },
        }),
      ),
    onSuccess: async (workspace) => {
      await client.invalidateQueries({ queryKey: ['me'] }) // the switcher lists it
      navigate(`/w/${workspace.id}/onboarding?step=upload`)
    },
  })
  const name = me.data?.workspaces.find((w) => w.id === workspaceId)?.name ?? 'this workspace'
  const customers = num(stats.data, 'customers')
  const last = text(stats.data, 'last_event')

  return (
    <Space orientation="vertical" size="middle" style={{ width: '100%', maxWidth: 640 }}>
      <Typography.Title level={4} style={{ margin: 0 }}>
        Where should the data go?
      </Typography.Title>
      <Radio.Group
        value={choice}
        onChange={(e) => setChoice(e.target.value)}
        aria-label="Where the data goes"
      >
        <Space orientation="vertical">
          <Radio value="this">
            Into <strong>{name}</strong>
            <Typography.Paragraph type="secondary" style={{ margin: 0 }}>
              {customers
                ? `It holds ${count(customers)} customers` +
                  (last ? `, the last event on ${day(last)}` : '') +
                  '. An import adds to them: customers with the same id are updated, ' +
                  'events already there are skipped.'
                : 'It holds no customers yet.'}
            </Typography.Paragraph>
          </Radio>
          <Radio value="new">
            Into a new workspace
            <Typography.Paragraph type="secondary" style={{ margin: 0 }}>
              Its own customers, segments and members: nothing mixes with {name}.
            </Typography.Paragraph>
          </Radio>
        </Space>
      </Radio.Group>
      {choice === 'this' ? (
        <Button type="primary" onClick={onNext}>
          Continue in {name}
        </Button>
      ) : (
        <Form layout="vertical" onFinish={create.mutate} requiredMark="optional">
          <Form.Item
            label="Workspace name"
            name="name"
            rules={[{ required: true, whitespace: true, message: 'Give the workspace a name.' }]}
          >
            <Input maxLength={100} placeholder="e.g. Online store" />
          </Form.Item>
          <Form.Item label="Industry" name="industry">
            <Input maxLength={100} placeholder="e.g. retail" />
          </Form.Item>
          {create.isError && (
            <Alert type="error" showIcon title={create.error.message} style={{ marginBottom: 16 }} />
          )}
          <Button type="primary" htmlType="submit" loading={create.isPending}>
            Create the workspace and continue
          </Button>
        </Form>
      )}
    </Space>
  )
}
