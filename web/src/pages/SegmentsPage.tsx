import { useState } from 'react'
import { Alert, Input, Select, Space, Table, Tag, Typography } from 'antd'
import { useQuery } from '@tanstack/react-query'
import { Link, useParams } from 'react-router-dom'
import { api, problemText } from '../api/client'

const KINDS = ['rule', 'static', 'rfm', 'tier', 'cluster', 'prediction']

/** Every segment of the workspace: name, kind, size, last refreshed and review status,
 * with search and a kind filter. */
export default function SegmentsPage() {
  const workspaceId = Number(useParams().workspaceId)
  const [search, setSearch] = useState('')
  const [kind, setKind] = useState<string | undefined>()
  const segments = useQuery({
    queryKey: ['segments', workspaceId],
    queryFn: async () => {
      const { data, error } = await api.GET('/api/v1/workspaces/{workspace_id}/segments', {
        params: { path: { workspace_id: workspaceId }, query: { limit: 500 } },
      })
      if (error) throw new Error(problemText(error))
      return data
    },
  })
  if (segments.isError) return <Alert type="error" title={segments.error.message} />
  const rows = (segments.data?.items ?? []).filter(
    (s) =>
      (!kind || s.kind === kind) && s.name.toLowerCase().includes(search.trim().toLowerCase()),
  )
  return (
    <Space direction="vertical" style={{ width: '100%' }}>
      <Typography.Title level={3}>Segments</Typography.Title>
      <Space wrap>
        <Input.Search
          aria-label="Search segments"
          placeholder="Search by name"
          allowClear
          onChange={(e) => setSearch(e.target.value)}
          style={{ width: 260 }}
        />
        <Select
          aria-label="Kind"
          placeholder="Any kind"
          allowClear
          style={{ width: 160 }}
          options={KINDS.map((k) => ({ value: k, label: k }))}
          onChange={setKind}
        />
      </Space>
      <Table
        rowKey="id"
        loading={segments.isPending}
        dataSource={rows}
        locale={{ emptyText: 'No segments yet: import data, then run the initial segmentation.' }}
        pagination={{ pageSize: 25, hideOnSinglePage: true }}
        scroll={{ x: true }}
        columns={[
          {
            title: 'Name',
            dataIndex: 'name',
            sorter: (a, b) => a.name.localeCompare(b.name),
            render: (name: string, s) => <Link to={`/w/${workspaceId}/segments/${s.id}`}>{name}</Link>,
          },
          { title: 'Kind', dataIndex: 'kind' },
          {
            title: 'Customers',
            dataIndex: 'customers',
            align: 'right',
            sorter: (a, b) => (a.customers ?? 0) - (b.customers ?? 0),
            render: (n: number | null) => (n == null ? '–' : n.toLocaleString()),
          },
          {
            title: 'Last refreshed',
            dataIndex: 'refreshed_at',
            render: (t: string | null) => (t ? new Date(t + 'Z').toLocaleString() : 'never'),
          },
          {
            title: 'Status',
            dataIndex: 'review_status',
            render: (s: string) =>
              s === 'draft' ? <Tag color="orange">waiting for approval</Tag> : <Tag>approved</Tag>,
          },
        ]}
      />
    </Space>
  )
}
