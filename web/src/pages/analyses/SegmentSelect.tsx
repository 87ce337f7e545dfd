import { Select } from 'antd'
import type { Segment } from '../../ui/workspace'

/** One segment to analyse, or the whole customer base when left empty. */
export function SegmentSelect({
  segments,
  value,
  onChange,
}: {
  segments: Segment[]
  value: string | undefined
  onChange: (name: string | undefined) => void
}) {
  return (
    <Select
      aria-label="Segment"
      allowClear
      showSearch={{ optionFilterProp: 'label' }}
      placeholder="All customers"
      value={value}
      onChange={onChange}
      style={{ width: 240, maxWidth: '100%' }}
      options={segments.map((s) => ({ value: s.name, label: s.name }))}
    />
  )
}
