import { Button, Progress, Space, Table, Typography } from 'antd'
import { Link } from 'react-router-dom'
import { segmentColor } from '../../ui/colors'
import { Swatch } from '../../ui/Swatch'
import { Nothing, Query } from '../../ui/states'
import { count } from '../../ui/format'
import { num, useStats } from './data'
import { type Segment, useSegments } from '../../ui/workspace'

const GROUPS = [
  { title: 'RFM segments', kinds: ['rfm'] },
  { title: 'Behaviour clusters', kinds: ['cluster'] },
  { title: 'Predictions', kinds: ['prediction'] },
  { title: 'Other segments', kinds: ['rule', 'static', 'tier'] },
]

/** Step 6: the segments the workspace has now, by kind, with their sizes. */
export function SegmentsStep({ workspaceId, onNext }: { workspaceId: number; onNext: () => void }) {
  const stats = useStats(workspaceId)
  // The segmentation has just changed them.
  const segments = useSegments(workspaceId, 'always')
  const customers = num(stats.data, 'customers') ?? 0
  return (
    <Query query={segments} what="the segments">
      {(page) => (
        <Space orientation="vertical" size="large" style={{ width: '100%' }}>
          <div>
            <Typography.Title level={4} style={{ margin: 0 }}>
              {count(page.total)} segments
            </Typography.Title>
            <Typography.Text type="secondary">
              Of {count(customers)} customers. Each stays up to date as new data comes in; open
              one to see its members and why each is in it.
            </Typography.Text>
          </div>
          {page.items.length === 0 && (
            <Nothing>No segments yet: run the segmentation first.</Nothing>
          )}
          {GROUPS.map((group) => {
            const rows = page.items.filter((s) => group.kinds.includes(s.kind))
            return (
              rows.length > 0 && (
                <SegmentTable
                  key={group.title}
                  title={group.title}
                  rows={rows}
                  customers={customers}
                  workspaceId={workspaceId}
                />
              )
            )
          })}
          <Button type="primary" onClick={onNext} disabled={page.items.length === 0}>
            Act on a segment
          </Button>
        </Space>
      )}
    </Query>
  )
}

function SegmentTable({
  title,
  rows,
  customers,
  workspaceId,
}: {
  title: string
  rows: Segment[]
  customers: number
  workspaceId: number
}) {
  return (
    <div>
      <Typography.Title level={5}>{title}</Typography.Title>
      <Table
        rowKey="id"
        size="small"
        aria-label={title}
        dataSource={rows}
        pagination={false}
        scroll={{ x: 'max-content' }}
        columns={[
          {
            title: 'Segment',
            dataIndex: 'name',
            render: (name: string, s) => (
              <Space size={8}>
                <Swatch id={s.id} />
                <Link to={`/w/${workspaceId}/segments/${s.id}`}>{name}</Link>
              </Space>
            ),
          },
          {
            title: 'Customers',
            dataIndex: 'customers',
            align: 'right',
            render: (n: number | null) => count(n ?? 0),
          },
          {
            title: 'Share',
            key: 'share',
            width: 160,
            render: (_, s) => (
              <Progress
                percent={customers ? Math.round(((s.customers ?? 0) / customers) * 1000) / 10 : 0}
                strokeColor={segmentColor(s.id)}
                size="small"
                aria-label={`${s.name} share of customers`}
              />
            ),
          },
          {
            title: 'About',
            dataIndex: 'description',
            render: (d: string | null) => (
              <Typography.Text type="secondary" style={{ maxWidth: 520, display: 'inline-block' }}>
                {d ?? ''}
              </Typography.Text>
            ),
          },
        ]}
      />
    </div>
  )
}
