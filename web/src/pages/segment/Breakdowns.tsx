import { useState } from 'react'
import { useQuery } from '@tanstack/react-query'
import { Card, Col, Row as Grid, Select, Space, Tag, Typography } from 'antd'
import { api, unwrap } from '../../api/client'
import { Nothing, Query } from '../../ui/states'
import { num, rowsOf, text, analysis } from '../../ui/workspace'
import { count, percent } from '../../ui/format'
import { SharesChart } from './SharesChart'
import type { SegmentPart } from './queries'

/** Columns that say who a customer is in the data, not what they are like. */
const NOT_TRAITS = new Set(['customer_id', 'external_id', 'created_at', 'updated_at'])
/** Shown first when the data has them; any other attribute or trait can be added. */
const FIRST = ['country', 'gender', 'plan', 'industry']
/** Breakdown bars that stand for no one value, so no customers can be listed behind them. */
const OTHER = '(other)'
const MISSING = '(missing)'

type Choice = { name: string; kind: string; trait: boolean }
/** The customers behind a bar: an attribute's value, or no value (`value` undefined). */
export type Pick = { attribute: string; value?: string }

/** How the segment spreads over customer attributes (country, plan…) and traits against
 * the whole base; values the statistics call over- or under-represented are tagged. A
 * bar of a text attribute can be clicked for the members behind it (`onPick`). */
export function Breakdowns({
  workspaceId,
  segmentId,
  name,
  onPick,
}: SegmentPart & {
  onPick: (pick: Pick) => void
}) {
  const choices = useChoices(workspaceId)
  const [chosen, setChosen] = useState<string[] | null>(null)
  return (
    <Query query={choices} what="the customer attributes">
      {(all) => {
        if (all.length === 0) return <Nothing>No customer attributes to break down.</Nothing>
        const shown = chosen ?? defaults(all)
        const option = (c: Choice) => ({ value: c.name, label: c.name.replace(/_/g, ' ') })
        return (
          <Space orientation="vertical" style={{ width: '100%' }} size="middle">
            <Select
              mode="multiple"
              aria-label="Attributes"
              style={{ width: '100%', maxWidth: 560 }}
              value={shown}
              onChange={setChosen}
              options={[
                { label: 'Attributes', options: all.filter((c) => !c.trait).map(option) },
                { label: 'Traits', options: all.filter((c) => c.trait).map(option) },
              ]}
            />
            <Grid gutter={[16, 16]}>
              {shown.map((attribute) => {
                const choice = all.find((c) => c.name === attribute)
                const drillable = choice !== undefined && !choice.trait && choice.kind === 'text'
                return (
                  <Col key={attribute} xs={24} lg={12}>
                    <Card size="small" title={`By ${attribute.replace(/_/g, ' ')}`}>
                      <Breakdown
                        workspaceId={workspaceId}
                        segmentId={segmentId}
                        name={name}
                        attribute={attribute}
                        onPick={drillable ? onPick : undefined}
                      />
                    </Card>
                  </Col>
                )
              })}
            </Grid>
          </Space>
        )
      }}
    </Query>
  )
}

function defaults(all: Choice[]): string[] {
  const names = all.filter((c) => !c.trait).map((c) => c.name)
  const first = FIRST.filter((a) => names.includes(a))
  return first.length > 0 ? first : names.slice(0, 2)
}

/** What a breakdown may use: the customer attributes less ids and personal data (never
 * broken down), and the traits computed from events. */
function useChoices(workspaceId: number) {
  return useQuery({
    queryKey: ['breakdown-choices', workspaceId],
    queryFn: async (): Promise<Choice[]> => {
      const path = { workspace_id: workspaceId }
      const [fields, personal] = await Promise.all([
        unwrap(api.GET('/api/v1/workspaces/{workspace_id}/segments/fields', { params: { path } })),
        unwrap(api.GET('/api/v1/workspaces/{workspace_id}/personal-fields', { params: { path } })),
      ])
      const hidden = new Set([...personal.customer_columns, ...personal.marked])
      return [
        ...fields.attributes
          .filter((a) => !NOT_TRAITS.has(a.name) && !hidden.has(a.name))
          .map((a) => ({ name: a.name, kind: a.kind, trait: false })),
        ...fields.traits.map((t) => ({ name: t.name, kind: t.kind, trait: true })),
      ]
    },
  })
}

function Breakdown({
  workspaceId,
  segmentId,
  name,
  attribute,
  onPick,
}: {
  workspaceId: number
  segmentId: number
  name: string
  attribute: string
  onPick?: (pick: Pick) => void
}) {
  const breakdown = useQuery({
    queryKey: ['analysis', 'breakdown', workspaceId, segmentId, attribute],
    queryFn: () =>
      analysis(
        api.GET('/api/v1/workspaces/{workspace_id}/analyses/breakdown', {
          params: {
            path: { workspace_id: workspaceId },
            query: { segment: String(segmentId), attribute, limit: 10 },
          },
        }),
      ),
  })
  return (
    <Query query={breakdown} what={`the breakdown by ${attribute}`}>
      {(answer) => {
        const rows = rowsOf(answer, 'breakdown').map((r) => ({
          value: text(r, 'value'),
          segment: num(r, 'segment_share') ?? 0,
          base: num(r, 'base_share') ?? 0,
          members: num(r, 'segment_customers') ?? 0,
          significant: r.significant === true,
          representation: text(r, 'representation'),
        }))
        if (rows.length === 0) return <Nothing>No members to break down.</Nothing>
        const notable = rows.filter((r) => r.significant)
        const pick =
          onPick &&
          ((r: (typeof rows)[number]) => {
            if (r.value === OTHER) return
            onPick(r.value === MISSING ? { attribute } : { attribute, value: r.value })
          })
        return (
          <>
            <SharesChart
              rows={rows}
              category="value"
              name={name}
              segmentId={segmentId}
              note={(r) => `${count(r.members)} members`}
              onPick={pick}
            />
            {notable.length > 0 ? (
              <Space wrap size={[4, 4]}>
                {notable.map((r) => (
                  <Tag key={r.value} color={r.segment > r.base ? 'green' : 'volcano'}>
                    {r.value}: {r.representation}-represented ({percent(r.segment)} vs{' '}
                    {percent(r.base)})
                  </Tag>
                ))}
              </Space>
            ) : (
              <Typography.Text type="secondary">
                No value differs from the base by more than chance.
              </Typography.Text>
            )}
            {pick && (
              <div>
                <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                  Click a bar to list the members behind it.
                </Typography.Text>
              </div>
            )}
          </>
        )
      }}
    </Query>
  )
}
