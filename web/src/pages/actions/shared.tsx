import { Alert, Select, type SelectProps, Tag } from 'antd'
import { segmentOptions, useSegments } from './hooks'

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
