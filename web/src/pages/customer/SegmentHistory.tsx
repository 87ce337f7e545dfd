import { useQuery } from '@tanstack/react-query'
import { List, Space, Tag, Typography } from 'antd'
import { Link } from 'react-router-dom'
import { api, unwrap } from '../../api/client'
import { Swatch } from '../../ui/Swatch'
import { Nothing, Query } from '../../ui/states'
import { text, useSegments } from '../../ui/workspace'
import { when } from '../../ui/format'

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
  const segments = useSegments(workspaceId)
  return (
    <Query query={history} what="the customer's segments">
      {(h) => {
        if (h.segments.length === 0) return <Nothing>Not in any segment yet.</Nothing>
        const ids = new Map((segments.data?.items ?? []).map((s) => [s.name, s.id]))
        const stints = [...h.segments].sort((a, b) =>
          text(b, 'joined').localeCompare(text(a, 'joined')),
        )
        const rfm = h.rfm
        return (
          <>
            {rfm.segment != null && (
              <Typography.Paragraph type="secondary">
                RFM segment: <b>{text(rfm, 'segment')}</b>
                {rfm.since != null && ` since ${when(text(rfm, 'since'))}`}
                {rfm.previous != null && `, before that ${text(rfm, 'previous')}`}.
              </Typography.Paragraph>
            )}
            <List
              size="small"
              aria-label="Segments"
              dataSource={stints}
              renderItem={(stint) => {
                const name = text(stint, 'segment')
                const id = ids.get(name)
                const left = stint.left == null ? null : text(stint, 'left')
                return (
                  <List.Item>
                    <Space orientation="vertical" size={0}>
                      <Space>
                        <Swatch id={id} />
                        {id === undefined ? (
                          name
                        ) : (
                          <Link to={`/w/${workspaceId}/segments/${id}`}>{name}</Link>
                        )}
                        {left === null ? <Tag color="green">in it now</Tag> : <Tag>left</Tag>}
                      </Space>
                      <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                        Joined {when(text(stint, 'joined'))}
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
