import { useQuery } from '@tanstack/react-query'
import { Typography } from 'antd'
import {
  CartesianGrid,
  Line,
  LineChart,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from 'recharts'
import { api, unwrap } from '../../api/client'
import { segmentColor } from '../../ui/colors'
import { Nothing, Query } from '../../ui/states'
import { count, when } from '../../ui/format'

/** The segment's size after each evaluation that changed it (refreshes, imports, live
 * events), with who joined and left at each. */
export function SizeChart({ workspaceId, segmentId }: { workspaceId: number; segmentId: number }) {
  const history = useQuery({
    queryKey: ['segment-history', workspaceId, segmentId],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/segments/{segment_id}/history', {
          params: { path: { workspace_id: workspaceId, segment_id: segmentId } },
        }),
      ),
  })
  return (
    <Query query={history} what="the segment's size over time">
      {(points) => {
        if (points.length === 0) return <Nothing>Not evaluated yet: refresh the segment.</Nothing>
        const data = points.map((p) => ({ ...p, at: when(p.as_of) }))
        return (
          <>
            <ResponsiveContainer width="100%" height={240}>
              <LineChart data={data} margin={{ top: 8, right: 16, bottom: 0, left: 0 }}>
                <CartesianGrid strokeDasharray="3 3" vertical={false} />
                <XAxis dataKey="at" tick={{ fontSize: 11 }} minTickGap={24} />
                <YAxis allowDecimals={false} tickFormatter={count} width={48} />
                <Tooltip
                  formatter={(value, _name, item) => {
                    const { joined, left } = item.payload
                    return `${count(Number(value))} (+${count(joined)} / −${count(left)})`
                  }}
                />
                <Line
                  type="stepAfter"
                  dataKey="members"
                  name="Members (joined / left)"
                  stroke={segmentColor(segmentId)}
                  strokeWidth={2}
                  dot={{ r: 4 }}
                  isAnimationActive={false}
                />
              </LineChart>
            </ResponsiveContainer>
            {points.length === 1 && (
              <Typography.Text type="secondary">
                One evaluation so far ({when(points[0].as_of)}): each refresh that changes the
                segment adds a point.
              </Typography.Text>
            )}
          </>
        )
      }}
    </Query>
  )
}
