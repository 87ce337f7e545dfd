import { useState } from 'react'
import { useQuery } from '@tanstack/react-query'
import { Button, Modal, Space, Tag, Typography } from 'antd'
import { api, unwrap } from '../../api/client'
import { Query } from '../../ui/states'
import { CustomerTable } from '../customer/CustomerTable'
import type { Pick } from './Breakdowns'
import type { SegmentPart } from './queries'

/** The segment's members (search, order, pages, CSV), each with why they are in it. */
export function Members({
  workspaceId,
  segmentId,
  name,
  match,
  onClear,
}: SegmentPart & {
  /** Only the members behind a breakdown's bar, until cleared. */
  match?: Pick
  onClear: () => void
}) {
  const [why, setWhy] = useState<string | null>(null)
  const csv = `/api/v1/workspaces/${workspaceId}/segments/${segmentId}/members.csv`
  return (
    <>
      <CustomerTable
        // A new filter starts again from the first page.
        key={JSON.stringify(match ?? null)}
        workspaceId={workspaceId}
        segmentId={segmentId}
        match={match}
        toolbar={
          <Space wrap>
            {match && (
              <Tag closable onClose={onClear} color="blue" aria-label="Filter">
                {match.value === undefined
                  ? `${match.attribute}: no value`
                  : `${match.attribute} = ${match.value}`}
              </Tag>
            )}
            <Button href={csv} download>
              Download CSV
            </Button>
          </Space>
        }
        extra={(c) => (
          <Button type="link" onClick={() => setWhy(String(c.external_id))}>
            Why here?
          </Button>
        )}
      />
      <Modal
        open={why !== null}
        title={`Why ${why} is in ${name}`}
        footer={null}
        onCancel={() => setWhy(null)}
      >
        {why !== null && (
          <Explanation workspaceId={workspaceId} segmentId={segmentId} customer={why} />
        )}
      </Modal>
    </>
  )
}

/** The segment's conditions checked against the customer, one line each: ✓ holds, ✗ not. */
function Explanation({
  workspaceId,
  segmentId,
  customer,
}: {
  workspaceId: number
  segmentId: number
  customer: string
}) {
  const explanation = useQuery({
    queryKey: ['explain', workspaceId, segmentId, customer],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/segments/{segment_id}/explain/{customer}', {
          params: { path: { workspace_id: workspaceId, segment_id: segmentId, customer } },
        }),
      ),
  })
  return (
    <Query query={explanation} what="the explanation">
      {(answer) => {
        const lines = String(answer.text ?? '').split('\n').filter(Boolean)
        return (
          <>
            <Typography.Paragraph>
              {answer.member ? (
                <Tag color="green">member now</Tag>
              ) : (
                <Tag color="orange">not a member now</Tag>
              )}
              {answer.matches !== undefined && (
                <Typography.Text type="secondary">
                  The rule {answer.matches ? 'holds' : 'does not hold'} for them today.
                </Typography.Text>
              )}
            </Typography.Paragraph>
            <div aria-label="Explanation" style={{ fontFamily: 'monospace', fontSize: 13 }}>
              {lines.length === 0
                ? 'No explanation for this kind of segment.'
                : lines.map((line, i) => (
                    <div
                      key={i}
                      style={{
                        whiteSpace: 'pre-wrap',
                        color: line.trimStart().startsWith('✗') ? '#cf1322' : undefined,
                      }}
                    >
                      {line}
                    </div>
                  ))}
            </div>
          </>
        )
      }}
    </Query>
  )
}
