import { Alert, Select, type SelectProps, Space, Tag, Typography } from 'antd'
import { Link } from 'react-router-dom'
import { useSegments } from '../../ui/workspace'
import { segmentOptions } from './hooks'

const STATUS_COLORS: Record<string, string> = {
  active: 'green',
  running: 'blue',
  delivered: 'green',
  done: 'green',
  pending: 'gold',
  delivering: 'blue',
  acting: 'blue',
  draft: 'default',
  paused: 'orange',
  disabled: 'orange',
  held_out: 'purple',
  skipped: 'default',
  ended: 'default',
  failed: 'red',
  cancelled: 'default',
}

/** One status word as a coloured tag, the same colour for the same word everywhere. */
export function StatusTag({ status }: { status: string }) {
  return <Tag color={STATUS_COLORS[status] ?? 'default'}>{status.replace('_', ' ')}</Tag>
}

/** The top of one webhook, automation or campaign: the way back to its list, its name
 * and its status. */
export function DetailHeader({ back, list, name, status }: { back: string; list: string; name: string; status: string }) {
  return (
    <Space orientation="vertical" size={0}>
      <Link to={back}>← {list}</Link>
      <Space wrap align="center" style={{ marginTop: 8 }}>
        <Typography.Title level={4} style={{ margin: 0 }}>
          {name}
        </Typography.Title>
        <StatusTag status={status} />
      </Space>
    </Space>
  )
}

/** An action's segment as a link to it, or 'deleted' once it is gone. */
export function SegmentLink({ workspaceId, id, name }: { workspaceId: number; id: number | null | undefined; name: string | null | undefined }) {
  return id && name ? <Link to={`/w/${workspaceId}/segments/${id}`}>{name}</Link> : <>deleted</>
}

/** What a button did, or why it could not, for the screen to say in plain words. */
export type Notice = { type: 'success' | 'error'; text: string }

export function NoticeBar({ notice, onClose }: { notice: Notice | null; onClose: () => void }) {
  if (!notice) return null
  return <Alert type={notice.type} showIcon closable={{ onClose }} title={notice.text} />
}

/** A searchable pick of the workspace's segments, each with its size; inside a Form.Item it
 * takes the item's id, value and onChange like any input. */
export function SegmentSelect({ workspaceId, ...props }: SelectProps & { workspaceId: number }) {
  const segments = useSegments(workspaceId)
  return (
    <Select
      showSearch={{ optionFilterProp: 'label' }}
      loading={segments.isPending}
      options={segmentOptions(segments)}
      {...props}
    />
  )
}
