import { useQuery } from '@tanstack/react-query'
import { List, Space, Tag, Typography } from 'antd'
import { Link } from 'react-router-dom'
import { api, unwrap } from '../../api/client'
import { segmentColor } from '../../ui/colors'
import { Nothing, Query } from '../../ui/states'
import { str } from '../segment/analysis'
import { when } from '../segment/format'

/** Every segment the customer has been in, when they joined and left, newest first;
 * each links to the segment's page. */
export function SegmentHistory({
  workspaceId,
  externalId,
}: {
  workspaceId: number
  externalId: string
}) {
  const history = useQuery({
    queryKey: ['customer-segments', workspaceId, externalId],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/customers/{external_id}/segments', {
          params: { path: { workspace_id: workspaceId, external_id: externalId } },
        }),
      ),
  })
  // The history names segments; the list gives their ids, for links and colours.
  const segments = useQuery({
    queryKey: ['segments', workspaceId],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/segments', {
          params: { path: { workspace_id: workspaceId }, query: { limit: 500 } },
        }),
      ),
  })
  return (
    <Query query={history} what="the customer's segments">
      {(h) => {
        if (h.segments.length === 0) return <Nothing>Not in any segment yet.</Nothing>
        const ids = new Map((segments.data?.items ?? []).map((s) => [s.name, s.id]))
        const stints = [...h.segments].sort((a, b) =>
          str(b, 'joined').localeCompare(str(a, 'joined')),
        )
        const rfm = h.rfm
        return (
          <>
            {rfm.segment != null && (
              <Typography.Paragraph type="secondary">
                RFM segment: <b>{str(rfm, 'segment')}</b>
                {rfm.since != null && ` since ${when(str(rfm, 'since'))}`}
                {rfm.previous != null && `, before that ${str(rfm, 'previous')}`}.
              </Typography.Paragraph>
            )}
            <List
              size="small"
              aria-label="Segments"
              dataSource={stints}
              renderItem={(stint) => {
                const name = str(stint, 'segment')
                const id = ids.get(name)
                const left = stint.left == null ? null : str(stint, 'left')
                return (
                  <List.Item>
                    <Space orientation="vertical" size={0}>
                      <Space>
                        <span
                          aria-hidden
                          style={{
                            display: 'inline-block',
                            width: 10,
                            height: 10,
                            borderRadius: 3,
                            background: id === undefined ? '#d9d9d9' : segmentColor(id),
                          }}
                        />
                        {id === undefined ? (
                          name
                        ) : (
                          <Link to={`/w/${workspaceId}/segments/${id}`}>{name}</Link>
                        )}
                        {left === null ? <Tag color="green">in it now</Tag> : <Tag>left</Tag>}
                      </Space>
                      <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                        Joined {when(str(stint, 'joined'))}
                        {left !== null && ` · left ${when(left)}`}
                      </Typography.Text>
                    </Space>
                  </List.Item>
                )
              }}
            />
          </>
        )
      }}
    </Query>
  )
}
