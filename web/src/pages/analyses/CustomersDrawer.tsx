import { useState } from 'react'
import { Alert, Drawer, Table, Typography } from 'antd'
import { keepPreviousData, useQuery } from '@tanstack/react-query'
import { Link } from 'react-router-dom'
import type { components } from '../../api/schema'
import { count } from '../../ui/format'
import { useWorkspaceId } from '../../ui/workspace'

type CustomerPage = components['schemas']['PageOf_DrillRow_']

const PAGE = 25

/** The customers behind one cell of a chart: what the cell is, and how to fetch its
 * customers a page at a time (one of the analyses' drill-down routes). */
export type Drill = {
  title: string
  detail?: string
  key: unknown[]
  load: (limit: number, offset: number) => Promise<CustomerPage>
}

/** A side panel listing a drill-down's customers, each linking to their profile. */
export function CustomersDrawer({ drill, onClose }: { drill: Drill | null; onClose: () => void }) {
  return (
    <Drawer
      open={drill !== null}
      onClose={onClose}
      size="min(720px, 100vw)"
      title={drill?.title}
      destroyOnHidden
    >
      {/* Keyed by the cell, so another cell starts again on page 1. */}
      {drill && <CustomerList key={JSON.stringify(drill.key)} drill={drill} />}
    </Drawer>
  )
}

function CustomerList({ drill }: { drill: Drill }) {
  const workspaceId = useWorkspaceId()
  const [page, setPage] = useState(1)
  const customers = useQuery({
    queryKey: ['drill', workspaceId, ...drill.key, page],
    queryFn: () => drill.load(PAGE, (page - 1) * PAGE),
    placeholderData: keepPreviousData,
  })
  const total = customers.data?.total
  return (
    <>
      {drill.detail && <Typography.Paragraph type="secondary">{drill.detail}</Typography.Paragraph>}
      <Typography.Paragraph>
        {/* The drill-down's own total, not the chart's number: the two must agree. */}
        <Typography.Text strong aria-label="Customers in this cell">
          {total === undefined ? 'Counting the customers…' : `${count(total)} customers`}
        </Typography.Text>
      </Typography.Paragraph>
      {customers.isError ? (
        <Alert type="error" showIcon title={customers.error.message} />
      ) : (
        <Table
          rowKey="customer_id"
          size="small"
          loading={customers.isPending}
          dataSource={customers.data?.items ?? []}
          scroll={{ x: 'max-content' }}
          locale={{ emptyText: customers.isPending ? ' ' : 'No customers here now.' }}
          pagination={{
            current: page,
            pageSize: PAGE,
            total: total ?? 0,
            showSizeChanger: false,
            hideOnSinglePage: true,
            onChange: setPage,
          }}
          columns={[
            {
              title: 'Customer',
              dataIndex: 'external_id',
              render: (id: string | null, row) =>
                id ? (
                  <Link to={`/w/${workspaceId}/customers/${encodeURIComponent(id)}`}>{id}</Link>
                ) : (
                  `#${row.customer_id}`
                ),
            },
            { title: 'Name', dataIndex: 'name' },
            { title: 'E-mail', dataIndex: 'email' },
            { title: 'Country', dataIndex: 'country' },
          ]}
        />
      )}
    </>
  )
}
