import { useQuery } from '@tanstack/react-query'
import { Card, Col, Row as Grid, Typography } from 'antd'
import { api } from '../../api/client'
import { Nothing, Query } from '../../ui/states'
import { num, rowsOf, text, analysis } from '../../ui/workspace'
import { count, decimal } from '../../ui/format'
import type { SegmentPart } from './queries'
import { SharesChart } from './SharesChart'

/** What members do: the mix of events they send, and how long they wait between orders,
 * each next to the whole base. */
export function Behaviour(props: SegmentPart) {
  return (
    <Grid gutter={[16, 16]}>
      <Col xs={24} lg={12}>
        <Card size="small" title="Event mix">
          <EventMix {...props} />
        </Card>
      </Col>
      <Col xs={24} lg={12}>
        <Card size="small" title="Days between orders">
          <OrderGaps {...props} />
        </Card>
      </Col>
    </Grid>
  )
}

function EventMix({ workspaceId, segmentId, name }: SegmentPart) {
  const mix = useQuery({
    queryKey: ['analysis', 'event-mix', workspaceId, segmentId],
    queryFn: () =>
      analysis(
        api.GET('/api/v1/workspaces/{workspace_id}/analyses/event-mix', {
          params: { path: { workspace_id: workspaceId }, query: { segment: String(segmentId) } },
        }),
      ),
  })
  return (
    <Query query={mix} what="the event mix">
      {(answer) => {
        const rows = rowsOf(answer, 'event_mix').map((r) => ({
          event: text(r, 'event_type'),
          segment: num(r, 'share_of_events') ?? 0,
          base: num(r, 'base_share') ?? 0,
          perCustomer: num(r, 'events_per_customer') ?? 0,
        }))
        if (rows.length === 0) return <Nothing>Members have sent no events yet.</Nothing>
        return (
          <>
            <SharesChart rows={rows} category="event" name={name} segmentId={segmentId} />
            <Typography.Text type="secondary">
              Per member:{' '}
              {rows.map((r) => `${r.event} ${decimal(r.perCustomer)}`).join(' · ')}
            </Typography.Text>
          </>
        )
      }}
    </Query>
  )
}

function OrderGaps({ workspaceId, segmentId, name }: SegmentPart) {
  const gaps = useQuery({
    queryKey: ['analysis', 'order-gaps', workspaceId, segmentId],
    queryFn: () =>
      analysis(
        api.GET('/api/v1/workspaces/{workspace_id}/analyses/order-gaps', {
          params: { path: { workspace_id: workspaceId }, query: { segment: String(segmentId) } },
        }),
      ),
  })
  return (
    <Query query={gaps} what="the days between orders">
      {(answer) => {
        const summary = rowsOf(answer, 'summary')
        const mine = summary.find((r) => r.scope === 'segment')
        const base = summary.find((r) => r.scope === 'base')
        if (!num(mine, 'gaps')) return <Nothing>No member has ordered twice yet.</Nothing>
        const rows = rowsOf(answer, 'gaps').map((r) => ({
          bucket: `${text(r, 'bucket')} d`,
          segment: num(r, 'share') ?? 0,
          base: num(r, 'base_share') ?? 0,
        }))
        return (
          <>
            <SharesChart rows={rows} category="bucket" name={name} segmentId={segmentId} />
            <Typography.Text type="secondary">
              Median {decimal(num(mine, 'median') ?? 0)} days between orders (all customers:{' '}
              {decimal(num(base, 'median') ?? 0)}), over {count(num(mine, 'gaps') ?? 0)} gaps of{' '}
              {count(num(mine, 'customers_with_repeat') ?? 0)} repeat buyers.
            </Typography.Text>
          </>
        )
      }}
    </Query>
  )
}
