import { useState } from 'react'
import { keepPreviousData, useQuery } from '@tanstack/react-query'
import { Pagination, Select, Space, Tag, Timeline as AntTimeline, Typography } from 'antd'
import { api, unwrap } from '../../api/client'
import { seriesColor } from '../../ui/colors'
import { Failed, Loading, Nothing } from '../../ui/states'
import { num, text } from '../../ui/workspace'
import { count, money, when } from '../../ui/format'

const PAGE = 20

/** The customer's events, newest first, a page at a time, optionally of one type. */
export function Timeline({ workspaceId, externalId }: { workspaceId: number; externalId: string }) {
  const [page, setPage] = useState(1)
  const [type, setType] = useState<string | undefined>()
  const events = useQuery({
    queryKey: ['customer-events', workspaceId, externalId, type ?? null, page],
    placeholderData: keepPreviousData,
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/customers/{external_id}/events', {
          params: {
            path: { workspace_id: workspaceId, external_id: externalId },
            query: { event_type: type, limit: PAGE, offset: (page - 1) * PAGE },
          },
        }),
      ),
  })
  const types = useEventTypes(workspaceId)
  return (
    <Space orientation="vertical" style={{ width: '100%' }}>
      <Select
        aria-label="Event type"
        placeholder="Every event type"
        allowClear
        style={{ width: 220 }}
        value={type}
        options={types.map((t) => ({ value: t, label: t }))}
        onChange={(t) => {
          setType(t)
          setPage(1)
        }}
      />
      {events.isError ? (
        <Failed error={events.error} />
      ) : events.isPending ? (
        <Loading what="the timeline" />
      ) : events.data.items.length === 0 ? (
        <Nothing>{type ? `No ${type} events.` : 'No events yet.'}</Nothing>
      ) : (
        <>
          <AntTimeline
            aria-label="Timeline"
            style={{ marginTop: 16, opacity: events.isPlaceholderData ? 0.5 : 1 }}
            items={events.data.items.map((e) => ({
              key: String(e.event_id),
              color: colorOf(text(e, 'event_type'), types),
              content: <Event event={e} />,
            }))}
          />
          <Pagination
            size="small"
            current={page}
            pageSize={PAGE}
            total={events.data.total}
            showSizeChanger={false}
            showTotal={(total) => `${count(total)} events`}
            onChange={setPage}
          />
        </>
      )}
    </Space>
  )
}

function Event({ event: e }: { event: Record<string, unknown> }) {
  const revenue = num(e, 'revenue')
  const properties = Object.entries((e.properties ?? {}) as Record<string, unknown>)
  return (
    <div>
      <Space wrap size={[8, 0]}>
        <Typography.Text strong>{text(e, 'event_type')}</Typography.Text>
        <Typography.Text type="secondary">{when(text(e, 'timestamp'))}</Typography.Text>
        {revenue != null && (
          <Typography.Text type={revenue < 0 ? 'danger' : undefined}>
            {money(revenue)} {text(e, 'currency')}
          </Typography.Text>
        )}
        {e.order_id != null && <Typography.Text code>{text(e, 'order_id')}</Typography.Text>}
        {e.lines != null && (
          <Typography.Text type="secondary">
            {count(num(e, 'lines') ?? 0)} lines, {count(num(e, 'units') ?? 0)} units
          </Typography.Text>
        )}
      </Space>
      {properties.length > 0 && (
        <div style={{ marginTop: 4 }}>
          {properties.map(([k, v]) => (
            <Tag key={k} style={{ marginBottom: 4, whiteSpace: 'normal', wordBreak: 'break-all' }}>
              {k}: {typeof v === 'object' ? JSON.stringify(v) : String(v)}
            </Tag>
          ))}
        </div>
      )}
    </div>
  )
}

/** One colour per event type, the same on every page of the timeline. */
function colorOf(type: string, types: string[]): string {
  const i = types.indexOf(type)
  return i < 0 ? 'gray' : seriesColor(i)
}

/** The workspace's event types, most frequent first, for the filter. */
function useEventTypes(workspaceId: number): string[] {
  const stats = useQuery({
    queryKey: ['stats', workspaceId],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/stats', {
          params: { path: { workspace_id: workspaceId } },
        }),
      ),
  })
  const byType = ((stats.data as { events_by_type?: Record<string, number> } | undefined)
    ?.events_by_type ?? {}) as Record<string, number>
  return Object.keys(byType).sort((a, b) => byType[b] - byType[a])
}
