import { useMemo, useState } from 'react'
import { AutoComplete, Button, DatePicker, Space, Table, Tag, Typography } from 'antd'
import { keepPreviousData, useQuery } from '@tanstack/react-query'
import { api, unwrap } from '../../api/client'
import { Failed } from '../../ui/states'
import { NotAllowed, Section } from './parts'
import { count, when } from '../../ui/format'
import { useWorkspace } from './common'
import { useSettled } from '../../ui/settled'

const PAGE = 25

type Filters = { actor: string; action: string; since: string; until: string }

/** The query of the filters given (empty ones left out), as the API and the export take it. */
function given(f: Filters) {
  return Object.fromEntries(Object.entries(f).filter(([, v]) => v.trim() !== '')) as Partial<Filters>
}

/** Who did what and when: the audit log filtered by actor, action and dates, page by
 * page, newest first, and exported as CSV or JSON Lines with the same filters. */
export default function AuditTab() {
  const { workspaceId, manages } = useWorkspace()
  const path = { workspace_id: workspaceId }
  const [typed, setTyped] = useState<Filters>({ actor: '', action: '', since: '', until: '' })
  const filters = useSettled(typed)
  const [page, setPage] = useState(1)
  const entries = useQuery({
    queryKey: ['settings-audit', workspaceId, filters, page],
    enabled: manages,
    placeholderData: keepPreviousData,
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/audit', {
          params: { path, query: { ...given(filters), limit: PAGE, offset: (page - 1) * PAGE } },
        }),
      ),
  })
  // The latest entries name the actors and actions to suggest in the filters.
  const recent = useQuery({
    queryKey: ['settings-audit-recent', workspaceId],
    enabled: manages,
    queryFn: () =>
      unwrap(api.GET('/api/v1/workspaces/{workspace_id}/audit', { params: { path, query: { limit: 500 } } })),
  })
  const suggestions = useMemo(() => {
    const items = recent.data?.items ?? []
    const actions = [...new Set(items.map((e) => e.action))].sort()
    const objects = [...new Set(actions.map((a) => `${a.split('.')[0]}.`))]
    return {
      actors: [...new Set(items.map((e) => e.actor))].sort().map((value) => ({ value })),
      actions: [
        ...objects.map((value) => ({ value, label: `${value} (every ${value.slice(0, -1)} action)` })),
        ...actions.map((value) => ({ value })),
      ],
    }
  }, [recent.data])

  if (!manages) return <NotAllowed what="read the audit log" />
  const set = (change: Partial<Filters>) => {
    setTyped({ ...typed, ...change })
    setPage(1)
  }
  const exportUrl = (format: 'csv' | 'jsonl') =>
    `/api/v1/workspaces/${workspaceId}/audit/export?${new URLSearchParams({ ...given(filters), format })}`
  return (
    <Section
      title="Audit log"
      intro="Every change to segments, automations, destinations, members, keys and settings, and every import, export and erasure: who, what and when. Entries cannot be changed or deleted."
      extra={
        <Space wrap>
          <Button href={exportUrl('csv')} download>
            Export CSV
          </Button>
          <Button href={exportUrl('jsonl')} download>
            Export JSON Lines
          </Button>
        </Space>
      }
    >
      <Space wrap>
        <AutoComplete
          aria-label="Actor"
          placeholder="Anyone (e-mail or cli:user)"
          allowClear
          style={{ width: 240 }}
          options={suggestions.actors}
          value={typed.actor}
          onChange={(actor) => set({ actor: actor ?? '' })}
          filterOption={(input, option) => String(option?.value).toLowerCase().includes(input.toLowerCase())}
        />
        <AutoComplete
          aria-label="Action"
          placeholder="Any action (e.g. member.add)"
          allowClear
          style={{ width: 240 }}
          options={suggestions.actions}
          popupMatchSelectWidth={320}
          value={typed.action}
          onChange={(action) => set({ action: action ?? '' })}
          filterOption={(input, option) => String(option?.value).includes(input.toLowerCase())}
        />
        <DatePicker.RangePicker
          aria-label="Dates"
          allowEmpty={[true, true]}
          onChange={(_, [since, until]) => set({ since, until })}
        />
      </Space>
      {entries.isError && <Failed error={entries.error} />}
      <Table
        rowKey="id"
        size="middle"
        loading={entries.isFetching}
        dataSource={entries.data?.items ?? []}
        scroll={{ x: 'max-content' }}
        locale={{ emptyText: 'No entries match these filters.' }}
        expandable={{
          expandedRowRender: (e) => (
            <Space orientation="vertical" size={4}>
              {e.details && (
                <pre aria-label="Details" style={{ margin: 0, whiteSpace: 'pre-wrap' }}>
                  {JSON.stringify(e.details, null, 2)}
                </pre>
              )}
              <Typography.Text type="secondary">
                {e.request_id ? `Request ${e.request_id}` : 'Not through the API'}
                {e.address ? ` from ${e.address}` : ''}
              </Typography.Text>
            </Space>
          ),
        }}
        pagination={{
          current: page,
          pageSize: PAGE,
          total: entries.data?.total ?? 0,
          showSizeChanger: false,
          showTotal: (total) => `${count(total)} entries`,
          onChange: setPage,
        }}
        columns={[
          { title: 'When', dataIndex: 'at', render: (t: string) => when(t) },
          { title: 'Who', dataIndex: 'actor' },
          { title: 'Action', dataIndex: 'action', render: (a: string) => <Tag>{a}</Tag> },
          { title: 'What', dataIndex: 'summary' },
          {
            title: 'Target',
            key: 'target',
            render: (_, e) => (e.target_type ? `${e.target_type} ${e.target_id ?? ''}` : '–'),
          },
        ]}
      />
    </Section>
  )
}
