import { useState, type ReactNode } from 'react'
import { keepPreviousData, useQuery } from '@tanstack/react-query'
import { Input, Space, Table, type TableColumnsType } from 'antd'
import { Link } from 'react-router-dom'
import { api, unwrap } from '../../api/client'
import type { operations } from '../../api/schema'
import { useMe } from '../../me'
import { Failed } from '../../ui/states'
import { count, day, when } from '../../ui/format'

type Search = operations['search_customers_api_v1_workspaces__workspace_id__customers_get']
type Sort = NonNullable<NonNullable<Search['parameters']['query']>['sort']>
type Customer = Record<string, unknown>

const PAGE = 25
/** Ordering by these would leak hidden values to viewers, who see them masked. */
const PERSONAL: Sort[] = ['name', 'email']

/** Customers (all, or one segment's members) searched, ordered and paged by the server,
 * each linking to their profile. `extra` adds a last column (e.g. "Why here?"). */
export function CustomerTable({
  workspaceId,
  segmentId,
  match,
  extra,
  toolbar,
}: {
  workspaceId: number
  segmentId?: number
  /** Only customers whose attribute has this value (no value: `value` undefined). */
  match?: { attribute: string; value?: string }
  extra?: (customer: Customer) => ReactNode
  /** Shown next to the search box (e.g. a download). */
  toolbar?: ReactNode
}) {
  const [q, setQ] = useState('')
  const [page, setPage] = useState(1)
  const [sort, setSort] = useState<{ key: Sort; order: 'asc' | 'desc' }>({
    key: 'customer_id',
    order: 'asc',
  })
  const me = useMe()
  const viewer = me.data?.workspaces.find((w) => w.id === workspaceId)?.role === 'viewer'
  const customers = useQuery({
    queryKey: ['customers', workspaceId, segmentId ?? null, match ?? null, q, page, sort],
    placeholderData: keepPreviousData,
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/customers', {
          params: {
            path: { workspace_id: workspaceId },
            query: {
              q: q || undefined,
              segment: segmentId,
              attribute: match?.attribute,
              value: match?.value,
              sort: sort.key,
              order: sort.order,
              limit: PAGE,
              offset: (page - 1) * PAGE,
            },
          },
        }),
      ),
  })

  const sortable = (key: Sort): TableColumnsType<Customer>[number] =>
    viewer && PERSONAL.includes(key)
      ? {}
      : {
          key,
          sorter: true,
          sortOrder: sort.key !== key ? null : sort.order === 'asc' ? 'ascend' : 'descend',
        }
  const text = (value: unknown) => (value == null || value === '' ? '–' : String(value))
  const columns: TableColumnsType<Customer> = [
    {
      title: 'Customer',
      dataIndex: 'external_id',
      ...sortable('external_id'),
      render: (id: string) => (
        <Link to={`/w/${workspaceId}/customers/${encodeURIComponent(id)}`}>{id}</Link>
      ),
    },
    { title: 'Name', dataIndex: 'name', ...sortable('name'), render: text },
    { title: 'E-mail', dataIndex: 'email', ...sortable('email'), render: text },
    { title: 'Country', dataIndex: 'country', ...sortable('country'), render: text },
    { title: 'Plan', dataIndex: 'plan', ...sortable('plan'), render: text },
    segmentId === undefined
      ? {
          title: 'Signed up',
          dataIndex: 'signup_date',
          ...sortable('signup_date'),
          render: (t: string | null) => (t ? day(t) : '–'),
        }
      : {
          title: 'In segment since',
          dataIndex: 'joined',
          ...sortable('joined'),
          render: (t: string) => when(t),
        },
  ]
  if (extra) columns.push({ title: '', key: 'extra', render: (_, c) => extra(c) })

  return (
    <Space orientation="vertical" style={{ width: '100%' }}>
      <Space wrap style={{ justifyContent: 'space-between', width: '100%' }}>
        <Input.Search
          aria-label={segmentId === undefined ? 'Search customers' : 'Search members'}
          placeholder={viewer ? 'Search by customer id' : 'Search by id, e-mail or name'}
          allowClear
          enterButton
          style={{ width: 320, maxWidth: '100%' }}
          onSearch={(value) => {
            setQ(value.trim())
            setPage(1)
          }}
        />
        {toolbar}
      </Space>
      {customers.isError ? (
        <Failed error={customers.error} />
      ) : (
        <Table<Customer>
          rowKey={(c) => String(c.customer_id)}
          size="middle"
          loading={customers.isFetching}
          dataSource={customers.data?.items ?? []}
          columns={columns}
          scroll={{ x: 'max-content' }}
          locale={{
            emptyText: q
              ? `No customer matches “${q}”.`
              : segmentId === undefined
                ? 'No customers yet: import your data first.'
                : 'No customers are in this segment now.',
          }}
          pagination={{
            current: page,
            pageSize: PAGE,
            total: customers.data?.total ?? 0,
            showSizeChanger: false,
            showTotal: (total) => `${count(total)} customers`,
          }}
          onChange={(pagination, _filters, sorter) => {
            const one = Array.isArray(sorter) ? sorter[0] : sorter
            const next: typeof sort = one?.order
              ? { key: one.columnKey as Sort, order: one.order === 'ascend' ? 'asc' : 'desc' }
              : { key: 'customer_id', order: 'asc' }
            if (next.key !== sort.key || next.order !== sort.order) {
              setSort(next)
              setPage(1)
            } else {
              setPage(pagination.current ?? 1)
            }
          }}
        />
      )}
    </Space>
  )
}
