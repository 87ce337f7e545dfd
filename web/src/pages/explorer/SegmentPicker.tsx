import { Button, Grid, Segmented, Select, Space, Tag, Typography } from 'antd'
import { segmentColor } from '../../ui/colors'
import { Swatch } from '../../ui/Swatch'
import type { Segment } from '../../ui/workspace'
import { count } from '../../ui/format'

const KINDS: Record<string, string> = {
  rfm: 'RFM',
  tier: 'Tiers',
  cluster: 'Clusters',
  prediction: 'Predictions',
  rule: 'Rule segments',
  static: 'Static lists',
}

/** The comparison sets Strata makes (RFM, a tier set, a clustering, churn bands) are
 * families; rule and static segments are grouped by kind. */
function groupOf(s: Segment): { key: string; label: string } {
  const kind = KINDS[s.kind] ?? s.kind
  if (!s.family || s.family === s.kind) return { key: s.family ?? s.kind, label: kind }
  return { key: s.family, label: `${kind}: ${s.family.split(':').pop()}` }
}

function groups(segments: Segment[]) {
  const byKey = new Map<string, { label: string; segments: Segment[] }>()
  for (const s of segments) {
    const { key, label } = groupOf(s)
    if (!byKey.has(key)) byKey.set(key, { label, segments: [] })
    byKey.get(key)!.segments.push(s)
  }
  return [...byKey.entries()].map(([key, g]) => ({ key, ...g }))
}

/** Which segments to compare: a multi-select grouped by family, with one-click picks of a
 * whole family (the RFM grid, a tier set, the clusters). */
export function SegmentSelector({
  segments,
  chosen,
  onChoose,
}: {
  segments: Segment[]
  chosen: number[]
  onChoose: (ids: number[]) => void
}) {
  const byId = new Map(segments.map((s) => [s.id, s]))
  // A family is worth one click when it has two or more segments with members.
  const families = groups(segments)
    .map((g) => ({ ...g, ids: g.segments.filter((s) => (s.customers ?? 0) > 0).map((s) => s.id) }))
    .filter((g) => g.ids.length >= 2)
  return (
    <Space orientation="vertical" style={{ width: '100%' }}>
      <Select
        mode="multiple"
        aria-label="Segments to compare"
        placeholder="Choose segments to compare"
        style={{ width: '100%' }}
        value={chosen}
        onChange={onChoose}
        maxCount={16}
        allowClear
        showSearch={{ optionFilterProp: 'name' }}
        options={groups(segments).map((g) => ({
          label: g.label,
          title: g.label,
          options: g.segments.map((s) => ({
            value: s.id,
            name: s.name,
            title: s.name,
            label: (
              <span style={{ display: 'inline-flex', alignItems: 'center' }}>
                <Swatch id={s.id} gap={6} />
                {s.name}
                <Typography.Text type="secondary" style={{ marginLeft: 6 }}>
                  {count(s.customers)}
                </Typography.Text>
              </span>
            ),
          })),
        }))}
        tagRender={({ value, closable, onClose }) => (
          <Tag
            color={segmentColor(Number(value))}
            closable={closable}
            onClose={onClose}
            style={{ marginInlineEnd: 4 }}
          >
            {byId.get(Number(value))?.name ?? value}
          </Tag>
        )}
      />
      {families.length > 0 && (
        <Space wrap size={[8, 8]}>
          <Typography.Text type="secondary">Compare a whole family:</Typography.Text>
          {families.map((f) => (
            <Button key={f.key} size="small" onClick={() => onChoose(f.ids)}>
              {f.label} ({f.ids.length})
            </Button>
          ))}
        </Space>
      )}
    </Space>
  )
}

/** The quick switcher: one button per chosen segment, in its colour; the focused one's
 * cards and recommendations show below. */
export function FocusSwitcher({
  segments,
  focus,
  onFocus,
}: {
  segments: Segment[]
  focus: number
  onFocus: (id: number) => void
}) {
  // At phone width the buttons stack: a row of them would not fit.
  const wide = Grid.useBreakpoint().sm ?? true
  return (
    <div style={{ overflowX: 'auto', minWidth: 0, maxWidth: '100%' }}>
      <Segmented
        aria-label="Focused segment"
        vertical={!wide}
        value={focus}
        onChange={(id) => onFocus(Number(id))}
        options={segments.map((s) => ({
          value: s.id,
          label: (
            <span style={{ display: 'inline-flex', alignItems: 'center' }}>
              <Swatch id={s.id} gap={6} />
              {s.name}
            </span>
          ),
        }))}
      />
    </div>
  )
}
