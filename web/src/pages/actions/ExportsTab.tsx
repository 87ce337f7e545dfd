import { useState } from 'react'
import { Alert, Button, Card, Col, Form, Input, Row, Select, Space, Table, Typography } from 'antd'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { Link } from 'react-router-dom'
import { api, unwrap } from '../../api/client'
import type { components } from '../../api/schema'
import { Failed, Nothing } from '../../ui/states'
import { FORMATS } from './action'
import { count, when } from '../../ui/format'
import { useWorkspaceId } from '../../ui/workspace'
import { useChosenSegment } from './hooks'
import { type Notice, NoticeBar, SegmentSelect } from './shared'
import { ConfirmButton } from '../../ui/ConfirmButton'

type Export = components['schemas']['ExportPublic']
type ExportCreate = components['schemas']['ExportCreate']

/** Bytes as people read them: "14.1 kB". */
function size(bytes: number | null): string {
  if (bytes == null) return 'file gone'
  if (bytes < 1000) return `${bytes} B`
  if (bytes < 1e6) return `${(bytes / 1e3).toFixed(1)} kB`
  return `${(bytes / 1e6).toFixed(1)} MB`
}

/** Export files: a segment's current members in the layout a tool imports; each file with
 * its rows, size and SHA-256, to download or delete. */
export function ExportsTab() {
  const workspaceId = useWorkspaceId()
  const [notice, setNotice] = useState<Notice | null>(null)
  const client = useQueryClient()
  const exports = useQuery({
    queryKey: ['exports', workspaceId],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/exports', {
          params: { path: { workspace_id: workspaceId }, query: { limit: 500 } },
        }),
      ),
  })
  const remove = useMutation({
    mutationFn: (exportId: number) =>
      unwrap(
        api.DELETE('/api/v1/workspaces/{workspace_id}/exports/{export_id}', {
          params: { path: { workspace_id: workspaceId, export_id: exportId } },
        }),
      ),
    onSuccess: () => client.invalidateQueries({ queryKey: ['exports', workspaceId] }),
    onError: (error) => setNotice({ type: 'error', text: error.message }),
  })

  return (
    <Space orientation="vertical" size="large" style={{ width: '100%' }}>
      <NewExport
        workspaceId={workspaceId}
        onCreated={(e) =>
          setNotice({ type: 'success', text: `${e.segment}: ${count(e.rows)} rows written as ${e.format}.` })
        }
      />
      <NoticeBar notice={notice} onClose={() => setNotice(null)} />
      {exports.isError ? (
        <Failed error={exports.error} />
      ) : (
        <Table<Export>
          rowKey="id"
          loading={exports.isPending}
          dataSource={exports.data?.items ?? []}
          pagination={{ pageSize: 25, hideOnSinglePage: true }}
          scroll={{ x: 'max-content' }}
          locale={{ emptyText: <Nothing>No export files yet: export a segment above.</Nothing> }}
          columns={[
            { title: 'Made', dataIndex: 'created_at', render: (t: string) => when(t) },
            {
              title: 'Segment',
              dataIndex: 'segment',
              render: (name: string | null, e) =>
                e.segment_id ? <Link to={`/w/${workspaceId}/segments/${e.segment_id}`}>{name}</Link> : 'deleted',
            },
            { title: 'Format', dataIndex: 'format' },
            { title: 'Rows', dataIndex: 'rows', align: 'right', render: (n: number) => count(n) },
            { title: 'Size', dataIndex: 'bytes', align: 'right', render: size },
            {
              title: 'SHA-256',
              dataIndex: 'sha256',
              render: (sha: string) => (
                <Typography.Text code copyable={{ text: sha }} title={sha}>
                  {sha.slice(0, 12)}…
                </Typography.Text>
              ),
            },
            {
              title: '',
              key: 'buttons',
              render: (_, e) => (
                <Space size="small">
                  <Button
                    size="small"
                    type="primary"
                    disabled={e.bytes == null}
                    href={`/api/v1/workspaces/${workspaceId}/exports/${e.id}/download`}
                    download={e.filename}
                  >
                    Download
                  </Button>
                  <ConfirmButton
                    verb="Delete"
                    question="Delete this export?"
                    consequence="Its file is deleted too."
                    onConfirm={() => remove.mutate(e.id)}
                    size="small"
                    pending={remove.isPending && remove.variables === e.id}
                  />
                </Space>
              ),
            },
          ]}
        />
      )}
    </Space>
  )
}

function NewExport({ workspaceId, onCreated }: { workspaceId: number; onCreated: (e: Export) => void }) {
  const [form] = Form.useForm<ExportCreate>()
  const chosen = useChosenSegment()
  const client = useQueryClient()
  const create = useMutation({
    mutationFn: (body: ExportCreate) =>
      unwrap(
        api.POST('/api/v1/workspaces/{workspace_id}/exports', {
          params: { path: { workspace_id: workspaceId } },
          body: { ...body, default_region: body.default_region?.trim() || null },
        }),
      ),
    onSuccess: (created) => {
      onCreated(created)
      return client.invalidateQueries({ queryKey: ['exports', workspaceId] })
    },
  })
  return (
    <Card title="Export a segment" size="small">
      <Form
        form={form}
        layout="vertical"
        requiredMark="optional"
        initialValues={{ format: 'csv', segment_id: chosen }}
        onFinish={(v) => create.mutate(v)}
      >
        <Row gutter={16}>
          <Col xs={24} md={9}>
            <Form.Item label="Segment" name="segment_id" rules={[{ required: true, message: 'Choose a segment' }]}>
              <SegmentSelect workspaceId={workspaceId} placeholder="Which segment" />
            </Form.Item>
          </Col>
          <Col xs={24} md={9}>
            <Form.Item label="Format" name="format" rules={[{ required: true, message: 'Choose a format' }]}>
              <Select options={[...FORMATS]} />
            </Form.Item>
          </Col>
          <Col xs={24} md={6}>
            <Form.Item
              label="Default phone region"
              name="default_region"
              extra="For phones without + of customers of unknown country."
              rules={[{ pattern: /^[A-Za-z]{2}$/, message: 'A two-letter country code, e.g. GB' }]}
            >
              <Input placeholder="GB" maxLength={2} />
            </Form.Item>
          </Col>
        </Row>
        {create.isError && <Alert type="error" showIcon title={create.error.message} style={{ marginBottom: 16 }} />}
        <Button type="primary" htmlType="submit" loading={create.isPending}>
          Export
        </Button>
      </Form>
    </Card>
  )
}
