import { useState } from 'react'
import { Alert, Card, Form, Select, Space, Table, Typography } from 'antd'
import { useQuery } from '@tanstack/react-query'
import { api, unwrap } from '../../api/client'
import { EChart } from '../../ui/EChart'
import { seriesColor } from '../../ui/colors'
import { Nothing, Query } from '../../ui/states'
import { CustomersDrawer, type Drill } from './CustomersDrawer'
import { count, percent } from '../../ui/format'
import { analysis, useSegments, useWorkspaceId } from '../../ui/workspace'
import { type Row, num, text } from './data'
import { SegmentSelect } from './SegmentSelect'

type Mode = 'first' | 'after' | 'before'
type Settings = { segment?: string; mode: Mode; event?: string; steps: number }

const MODES = [
  { value: 'first', label: 'First steps' },
  { value: 'after', label: 'After an event' },
  { value: 'before', label: 'Before an event' },
]

/** The paths of event types customers take, as a Sankey of steps; a link or a node opens
 * the customers who went that way. */
export function JourneysTab() {
  const workspaceId = useWorkspaceId()
  const segments = useSegments(workspaceId)
  const [settings, setSettings] = useState<Settings>({ mode: 'first', steps: 4 })
  const [drill, setDrill] = useState<Drill | null>(null)
  const { segment, mode, event, steps } = settings
  const needsEvent = mode !== 'first' && !event

  const eventTypes = useQuery({
    queryKey: ['analysis', workspaceId, 'event-mix'],
    queryFn: () =>
      analysis(
        api.GET('/api/v1/workspaces/{workspace_id}/analyses/event-mix', {
          params: { path: { workspace_id: workspaceId } },
        }),
      ),
  })
  const journeys = useQuery({
    queryKey: ['analysis', workspaceId, 'journeys', settings],
    enabled: !needsEvent,
    queryFn: () =>
      analysis(
        api.GET('/api/v1/workspaces/{workspace_id}/analyses/journeys', {
          params: {
            path: { workspace_id: workspaceId },
            query: { segment: segment ?? null, mode, event: event ?? null, steps, limit: 10 },
          },
        }),
      ),
  })

  const open = (step: number, source: string, target: string | null) =>
    setDrill({
      title: target ? `${source} → ${target}` : source,
      detail: target
        ? `Customers whose step ${step} was ${source} and step ${step + 1} ${target}.`
        : `Customers whose step ${step} was ${source}.`,
      key: ['journeys', settings, step, source, target],
      load: (limit, offset) =>
        unwrap(
          api.GET('/api/v1/workspaces/{workspace_id}/analyses/journeys/customers', {
            params: {
              path: { workspace_id: workspaceId },
              query: {
                segment: segment ?? null,
                mode,
                event: event ?? null,
                steps,
                step,
                source_event: source,
                target_event: target,
                limit,
                offset,
              },
            },
          }),
        ),
    })

  const types = (eventTypes.data?.tables.event_mix?.rows ?? []).map((r) => text(r, 'event_type'))
  // After / before start from the order event when there is one: the question people ask.
  const anchorFor = (m: Mode) =>
    m === 'first' ? undefined : (event ?? types.find((t) => t === 'order') ?? types[0])
  return (
    <Space orientation="vertical" size="large" style={{ width: '100%' }}>
      <Form layout="inline" style={{ rowGap: 8 }}>
        <Form.Item label="Customers">
          <SegmentSelect
            segments={segments.data?.items ?? []}
            value={segment}
            onChange={(s) => setSettings({ ...settings, segment: s })}
          />
        </Form.Item>
        <Form.Item label="Journey">
          <Select
            aria-label="Journey"
            value={mode}
            style={{ width: 170 }}
            options={MODES}
            onChange={(m: Mode) => setSettings({ ...settings, mode: m, event: anchorFor(m) })}
          />
        </Form.Item>
        {mode !== 'first' && (
          <Form.Item label="Event">
            <Select
              aria-label="Event"
              value={event}
              style={{ width: 170 }}
              loading={eventTypes.isPending}
              options={types.map((t) => ({ value: t, label: t }))}
              onChange={(e: string) => setSettings({ ...settings, event: e })}
            />
          </Form.Item>
        )}
        <Form.Item label="Steps">
          <Select
            aria-label="Steps"
            value={steps}
            style={{ width: 80 }}
            options={[2, 3, 4, 5, 6].map((n) => ({ value: n, label: n }))}
            onChange={(n: number) => setSettings({ ...settings, steps: n })}
          />
        </Form.Item>
      </Form>
      {needsEvent ? (
        <Nothing>Choose the event the journeys start or end at.</Nothing>
      ) : (
        <Query query={journeys} what="the journeys">
          {(answer) => {
            const links = answer.tables.links.rows
            const nodes = answer.tables.nodes.rows
            if (nodes.length === 0)
              return (
                <Nothing>
                  {mode === 'first'
                    ? 'No events yet for these customers.'
                    : `None of these customers has sent a ${event} event.`}
                </Nothing>
              )
            return (
              <Space orientation="vertical" size="large" style={{ width: '100%' }}>
                <Card title="Journeys, step by step" variant="outlined">
                  {links.length === 0 ? (
                    <Alert
                      type="info"
                      showIcon
                      title="Every journey here is a single step: nobody went on to another event."
                    />
                  ) : (
                    <>
                      <Typography.Paragraph type="secondary">
                        Each column is a step; each band the customers who went from one event to
                        the next. Click a band or a box to see its customers.
                      </Typography.Paragraph>
                      <JourneySankey
                        nodes={nodes}
                        links={links}
                        types={types}
                        onLink={(l) =>
                          open(num(l, 'step'), text(l, 'source_event'), text(l, 'target_event'))
                        }
                        onNode={(n) => open(num(n, 'step'), text(n, 'event_type'), null)}
                      />
                    </>
                  )}
                </Card>
                <Card title="Most common paths" variant="outlined">
                  <Table
                    size="small"
                    rowKey={(r) => text(r, 'path')}
                    dataSource={answer.tables.paths.rows}
                    pagination={false}
                    scroll={{ x: 'max-content' }}
                    columns={[
                      { title: 'Path', key: 'path', render: (_, r) => text(r, 'path') },
                      {
                        title: 'Customers',
                        key: 'customers',
                        align: 'right',
                        render: (_, r) => count(num(r, 'customers')),
                      },
                      {
                        title: 'Share',
                        key: 'share',
                        align: 'right',
                        render: (_, r) => percent(num(r, 'share')),
                      },
                    ]}
                  />
                </Card>
              </Space>
            )
          }}
        </Query>
      )}
      <CustomersDrawer drill={drill} onClose={() => setDrill(null)} />
    </Space>
  )
}

function JourneySankey({
  nodes,
  links,
  types,
  onLink,
  onNode,
}: {
  nodes: Row[]
  links: Row[]
  types: string[]
  onLink: (link: Row) => void
  onNode: (node: Row) => void
}) {
  // One colour per event type, the same at every step.
  const colourOf = (type: string) => seriesColor(Math.max(0, types.indexOf(type)))
  const byNode = new Map(nodes.map((n) => [text(n, 'node'), n]))
  const option = {
    tooltip: {
      formatter: (p: { dataType: string; dataIndex: number }) => {
        if (p.dataType === 'edge') {
          const l = links[p.dataIndex]
          return `<b>${text(l, 'source_event')} → ${text(l, 'target_event')}</b><br/>step ${num(l, 'step')} → ${num(l, 'step') + 1}: ${count(num(l, 'customers'))} customers`
        }
        const n = nodes[p.dataIndex]
        return `<b>${text(n, 'event_type')}</b><br/>step ${num(n, 'step')}: ${count(num(n, 'customers'))} customers`
      },
    },
    series: [
      {
        type: 'sankey',
        left: 8,
        right: 120,
        top: 8,
        bottom: 8,
        nodeGap: 12,
        nodeAlign: 'left',
        layoutIterations: 0,
        emphasis: { focus: 'adjacency' },
        data: nodes.map((n) => ({
          name: text(n, 'node'),
          itemStyle: { color: colourOf(text(n, 'event_type')) },
        })),
        links: links.map((l) => ({
          source: text(l, 'source'),
          target: text(l, 'target'),
          value: num(l, 'customers'),
        })),
        label: {
          formatter: (p: { name: string }) => {
            const n = byNode.get(p.name)
            return n ? `${text(n, 'event_type')} ${count(num(n, 'customers'))}` : p.name
          },
        },
        lineStyle: { color: 'source', opacity: 0.35, curveness: 0.5 },
        cursor: 'pointer',
      },
    ],
  }
  return (
    <div style={{ overflowX: 'auto' }}>
      <div style={{ minWidth: 640 }}>
        <EChart
          label="Journey Sankey"
          option={option}
          height={Math.max(360, Math.min(720, nodes.length * 36))}
          onClick={(p) =>
            p.dataType === 'edge' ? onLink(links[p.dataIndex]) : onNode(nodes[p.dataIndex])
          }
        />
      </div>
    </div>
  )
}
