import { useState } from 'react'
import { Alert, Button, Descriptions, Modal, Space, Spin, Table, Tag, Typography } from 'antd'
import { useQuery } from '@tanstack/react-query'
import { Link, useParams } from 'react-router-dom'
import { api, problemText } from '../api/client'

const PAGE = 25

/** One segment: what it is, its members page by page (with a CSV download), and why any
 * member is in it. */
export default function SegmentPage() {
  const workspaceId = Number(useParams().workspaceId)
  const segmentId = Number(useParams().segmentId)
  const [page, setPage] = useState(1)
  const [why, setWhy] = useState<string | null>(null)
  const path = { workspace_id: workspaceId, segment_id: segmentId }

  const segment = useQuery({
    queryKey: ['segment', workspaceId, segmentId],
    queryFn: async () => {
      const { data, error } = await api.GET(
        '/api/v1/workspaces/{workspace_id}/segments/{segment_id}',
        { params: { path } },
      )
      if (error) throw new Error(problemText(error))
      return data
    },
  })
  const members = useQuery({
    queryKey: ['members', workspaceId, segmentId, page],
    queryFn: async () => {
      const { data, error } = await api.GET(
        '/api/v1/workspaces/{workspace_id}/segments/{segment_id}/members',
        { params: { path, query: { limit: PAGE, offset: (page - 1) * PAGE } } },
      )
      if (error) throw new Error(problemText(error))
      return data
    },
  })
  const explanation = useQuery({
    queryKey: ['explain', workspaceId, segmentId, why],
    enabled: why !== null,
    queryFn: async () => {
      const { data, error } = await api.GET(
        '/api/v1/workspaces/{workspace_id}/segments/{segment_id}/explain/{customer}',
        { params: { path: { ...path, customer: why! } } },
      )
      if (error) throw new Error(problemText(error))
      return data as { text?: string; member?: boolean }
    },
  })

  if (segment.isError) return <Alert type="error" title={segment.error.message} />
  if (segment.isPending) return <Spin style={{ margin: 48 }} />
  const s = segment.data
  const csv = `/api/v1/workspaces/${workspaceId}/segments/${segmentId}/members.csv`
  return (
    <Space direction="vertical" style={{ width: '100%' }} size="large">
      <Space direction="vertical" size={0}>
        <Link to={`/w/${workspaceId}/segments`}>← Segments</Link>
        <Typography.Title level={3} style={{ marginTop: 8 }}>
          {s.name}
        </Typography.Title>
        {s.description && <Typography.Text type="secondary">{s.description}</Typography.Text>}
      </Space>
      <Descriptions
        bordered
        size="small"
        column={{ xs: 1, sm: 2, md: 4 }}
        items={[
          { key: 'customers', label: 'Customers', children: (s.customers ?? 0).toLocaleString() },
          { key: 'kind', label: 'Kind', children: s.kind },
          {
            key: 'refreshed',
            label: 'Last refreshed',
            children: s.refreshed_at ? new Date(s.refreshed_at + 'Z').toLocaleString() : 'never',
          },
          {
            key: 'status',
            label: 'Status',
            children:
              s.review_status === 'draft' ? <Tag color="orange">waiting for approval</Tag> : 'approved',
          },
        ]}
      />
      <Space style={{ justifyContent: 'space-between', width: '100%' }} wrap>
        <Typography.Title level={4} style={{ margin: 0 }}>
          Members
        </Typography.Title>
        <Button href={csv} download>
          Download CSV
        </Button>
      </Space>
      {members.isError ? (
        <Alert type="error" title={members.error.message} />
      ) : (
        <Table
          rowKey="customer_id"
          loading={members.isPending}
          dataSource={members.data?.items ?? []}
          scroll={{ x: true }}
          locale={{ emptyText: 'No customers are in this segment now.' }}
          pagination={{
            current: page,
            pageSize: PAGE,
            total: members.data?.total ?? 0,
            showSizeChanger: false,
            showTotal: (total) => `${total.toLocaleString()} customers`,
            onChange: setPage,
          }}
          columns={[
            { title: 'Customer', dataIndex: 'external_id' },
            { title: 'Name', dataIndex: 'name' },
            { title: 'E-mail', dataIndex: 'email' },
            { title: 'Country', dataIndex: 'country' },
            {
              title: 'Joined',
              dataIndex: 'joined',
              render: (t: string) => new Date(t.replace(' ', 'T') + 'Z').toLocaleDateString(),
            },
            {
              title: '',
              key: 'why',
              render: (_, row) => (
                <Button type="link" onClick={() => setWhy(row.external_id ?? String(row.customer_id))}>
                  Why here?
                </Button>
              ),
            },
          ]}
        />
      )}
      <Modal
        open={why !== null}
        title={`Why ${why} is in ${s.name}`}
        footer={null}
        onCancel={() => setWhy(null)}
      >
        {explanation.isPending ? (
          <Spin />
        ) : explanation.isError ? (
          <Alert type="error" title={explanation.error.message} />
        ) : (
          <pre aria-label="Explanation" style={{ whiteSpace: 'pre-wrap', margin: 0 }}>
            {explanation.data?.text ?? 'No explanation for this kind of segment.'}
          </pre>
        )}
      </Modal>
    </Space>
  )
}
