import { AutoComplete, Button, Checkbox, Flex, Input, InputNumber, Select, Tooltip, Typography } from 'antd'
import { useQuery } from '@tanstack/react-query'
import { api } from '../../api/client'
import { count } from '../../ui/format'
import { analysis } from '../../ui/workspace'
import type { Condition, FieldKind, RuleFields } from './rule'
import {
  DAY_OPS,
  OP_LABELS,
  OPS_BY_KIND,
  TIMES_LABELS,
  TOTAL_LABELS,
  TOTAL_OPS,
  emptyBucket,
  emptyEvent,
  emptyProperty,
  emptySegment,
  emptyTotal,
  valueFor,
} from './rule'

/** What the builder can pick from: the API's fields and the workspace's segments. */
export type Choices = { workspaceId: number; fields: RuleFields; segments: string[] }

const CONDITION_TYPES = [
  { value: 'property', label: 'Customer property' },
  { value: 'event', label: 'Event' },
  { value: 'total', label: 'Event revenue' },
  { value: 'segment', label: 'Segment membership' },
  { value: 'bucket', label: 'Random sample' },
]
const EMPTY: Record<string, () => Condition> = {
  property: emptyProperty,
  event: emptyEvent,
  total: emptyTotal,
  segment: emptySegment,
  bucket: emptyBucket,
}

/** One condition: its type, then the inputs that type takes; every input labelled. */
export function ConditionEditor({
  label,
  condition,
  choices,
  onChange,
  onRemove,
}: {
  label: string
  condition: Condition
  choices: Choices
  onChange: (next: Condition) => void
  onRemove: () => void
}) {
  return (
    <Flex
      role="group"
      aria-label={label}
      gap={8}
      align="flex-start"
      style={{ padding: '8px 10px', background: '#fff', border: '1px solid #e8e8e8', borderRadius: 8 }}
    >
      <Flex gap={8} wrap align="center" style={{ flex: 1, minWidth: 0 }}>
        {condition.type !== 'kept' && (
          <Select
            aria-label="Condition type"
            value={condition.type}
            options={CONDITION_TYPES}
            onChange={(type) => onChange(EMPTY[type]())}
            style={{ width: 180 }}
          />
        )}
        {condition.type === 'property' && (
          <PropertyInputs condition={condition} choices={choices} onChange={onChange} />
        )}
        {condition.type === 'event' && (
          <EventInputs condition={condition} events={choices.fields.events} onChange={onChange} />
        )}
        {condition.type === 'total' && (
          <TotalInputs condition={condition} events={choices.fields.events} onChange={onChange} />
        )}
        {condition.type === 'segment' && (
          <SegmentInputs condition={condition} segments={choices.segments} onChange={onChange} />
        )}
        {condition.type === 'bucket' && <BucketInputs condition={condition} onChange={onChange} />}
        {condition.type === 'kept' && (
          <Flex vertical style={{ minWidth: 0 }}>
            <Typography.Text type="secondary">
              This condition uses options the builder has no form for; it is kept as it is.
            </Typography.Text>
            <Typography.Text code style={{ wordBreak: 'break-all' }}>
              {JSON.stringify(condition.rule)}
            </Typography.Text>
          </Flex>
        )}
      </Flex>
      <Tooltip title="Remove this condition">
        <Button aria-label={`Remove ${label.toLowerCase()}`} type="text" danger onClick={onRemove}>
          ✕
        </Button>
      </Tooltip>
    </Flex>
  )
}

type Of<T extends Condition['type']> = Extract<Condition, { type: T }>

function PropertyInputs({
  condition: c,
  choices: { workspaceId, fields },
  onChange,
}: {
  condition: Of<'property'>
  choices: Choices
  onChange: (next: Condition) => void
}) {
  const all = [
    ...fields.attributes.map((f) => ({ ...f, source: 'attribute' as const })),
    // most_frequent needs an event property named too: kept for rules written in YAML.
    ...fields.traits.filter((f) => f.name !== 'most_frequent').map((f) => ({ ...f, source: 'trait' as const })),
  ]
  const field = all.find((f) => f.source === c.source && f.name === c.field)
  const kind: FieldKind = field?.kind ?? 'text'
  const ops = OPS_BY_KIND[kind]
  const suggestions = useSuggestions(workspaceId, kind === 'text' ? c.field : '')
  const option = (f: (typeof all)[number]) => ({
    value: `${f.source}:${f.name}`,
    label: f.name.replaceAll('_', ' '),
  })
  return (
    <>
      <Select
        aria-label="Property"
        showSearch={{ optionFilterProp: 'label' }}
        placeholder="Choose a property"
        value={c.field ? `${c.source}:${c.field}` : undefined}
        options={[
          { label: 'Customer attributes', options: all.filter((f) => f.source === 'attribute').map(option) },
          { label: 'Computed from events', options: all.filter((f) => f.source === 'trait').map(option) },
        ]}
        onChange={(picked: string) => {
          const [source, name] = picked.split(':') as ['attribute' | 'trait', string]
          const nextKind = all.find((f) => f.source === source && f.name === name)?.kind ?? 'text'
          const op = OPS_BY_KIND[nextKind].includes(c.op) && nextKind === kind ? c.op : OPS_BY_KIND[nextKind][0]
          const value = op === c.op && nextKind === kind ? c.value : valueFor(op, nextKind)
          onChange({ ...c, source, field: name, op, value })
        }}
        style={{ width: 200 }}
      />
      <Select
        aria-label="Operator"
        value={c.op}
        options={ops.map((op) => ({ value: op, label: OP_LABELS[op] }))}
        onChange={(op: string) => onChange({ ...c, op, value: valueFor(op, kind) })}
        style={{ width: 190 }}
      />
      <ValueInputs
        condition={c}
        kind={kind}
        suggestions={suggestions}
        onChange={onChange}
      />
    </>
  )
}

/** The most common values of a text attribute or trait, to pick from as one types: those
 * shared by more than one customer (an e-mail or a name suggests nothing). */
function useSuggestions(workspaceId: number, field: string) {
  const breakdown = useQuery({
    queryKey: ['value-suggestions', workspaceId, field],
    enabled: field !== '',
    staleTime: 5 * 60_000,
    queryFn: () =>
      analysis(
        api.GET('/api/v1/workspaces/{workspace_id}/analyses/breakdown', {
          params: { path: { workspace_id: workspaceId }, query: { attribute: field, limit: 30 } },
        }),
      ),
  })
  const rows = breakdown.data?.tables.breakdown?.rows ?? []
  return rows
    .filter((r) => typeof r.value === 'string' && !r.value.startsWith('(') && Number(r.base_customers) > 1)
    .map((r) => ({
      value: String(r.value),
      label: `${String(r.value)} (${count(Number(r.base_customers))})`,
    }))
}

/** The value of a property condition, typed by the field's kind and the operator. */
function ValueInputs({
  condition: c,
  kind,
  suggestions,
  onChange,
}: {
  condition: Of<'property'>
  kind: FieldKind
  suggestions: { value: string; label: string }[]
  onChange: (next: Condition) => void
}) {
  const set = (value: Of<'property'>['value']) => onChange({ ...c, value })
  if (c.op === 'exists' || c.op === 'missing') return null
  if (DAY_OPS.includes(c.op)) {
    return (
      <>
        <InputNumber
          aria-label="Days"
          min={c.op === 'more_than_days_ago' ? 0 : 1}
          precision={0}
          value={typeof c.value === 'number' ? c.value : null}
          onChange={set}
          suffix="days"
          style={{ width: 120 }}
        />
        {kind === 'date' && c.op !== 'more_than_days_ago' && (
          <Checkbox checked={c.yearly} onChange={(e) => onChange({ ...c, yearly: e.target.checked })}>
            any year (birthdays, anniversaries)
          </Checkbox>
        )}
      </>
    )
  }
  if (c.op === 'in' || c.op === 'not_in') {
    const list = Array.isArray(c.value) ? c.value : []
    return (
      <Select
        aria-label="Values"
        mode="tags"
        options={suggestions}
        open={suggestions.length === 0 ? false : undefined}
        tokenSeparators={[',']}
        placeholder="Type values, each followed by Enter"
        value={list.map(String)}
        onChange={(values: string[]) => set(kind === 'number' ? values.map(Number).filter((n) => !Number.isNaN(n)) : values)}
        style={{ minWidth: 200, flex: 1 }}
      />
    )
  }
  if (c.op === 'between') {
    const [low, high] = Array.isArray(c.value) ? c.value : []
    const pair = (i: 0 | 1, v: string | number | null) => {
      const next = [low ?? null, high ?? null] as (string | number | null)[]
      next[i] = v
      set(next as (string | number)[])
    }
    return (
      <Flex gap={6} align="center">
        <SingleValue kind={kind} label="From" value={low ?? null} onChange={(v) => pair(0, v)} />
        and
        <SingleValue kind={kind} label="To" value={high ?? null} onChange={(v) => pair(1, v)} />
      </Flex>
    )
  }
  if (kind === 'boolean') {
    return (
      <Select
        aria-label="Value"
        value={c.value === false ? 'false' : 'true'}
        options={[
          { value: 'true', label: 'true' },
          { value: 'false', label: 'false' },
        ]}
        onChange={(v: string) => set(v === 'true')}
        style={{ width: 100 }}
      />
    )
  }
  // Always an AutoComplete for text, so suggestions arriving late do not swap the input.
  if (kind === 'text' && ['eq', 'neq'].includes(c.op)) {
    return (
      <AutoComplete
        aria-label="Value"
        placeholder="value (exact, case-sensitive)"
        value={typeof c.value === 'string' ? c.value : ''}
        options={suggestions}
        showSearch={{ filterOption: (typed, option) => String(option?.value).toLowerCase().includes(typed.toLowerCase()) }}
        onChange={(v: string) => set(v)}
        style={{ width: 200 }}
      />
    )
  }
  return (
    <SingleValue
      kind={kind}
      label="Value"
      value={typeof c.value === 'string' || typeof c.value === 'number' ? c.value : null}
      onChange={set}
    />
  )
}

function SingleValue({
  kind,
  label,
  value,
  onChange,
}: {
  kind: FieldKind
  label: string
  value: string | number | null
  onChange: (v: string | number | null) => void
}) {
  if (kind === 'number') {
    return (
      <InputNumber
        aria-label={label}
        value={typeof value === 'number' ? value : null}
        onChange={(v) => onChange(v)}
        style={{ width: 130 }}
      />
    )
  }
  if (kind === 'date' || kind === 'timestamp') {
    return (
      <Input
        aria-label={label}
        type="date"
        value={typeof value === 'string' ? value : ''}
        onChange={(e) => onChange(e.target.value || null)}
        style={{ width: 160 }}
      />
    )
  }
  return (
    <Input
      aria-label={label}
      placeholder="value (exact, case-sensitive)"
      value={value == null ? '' : String(value)}
      onChange={(e) => onChange(e.target.value)}
      style={{ width: 200 }}
    />
  )
}

function EventInputs({
  condition: c,
  events,
  onChange,
}: {
  condition: Of<'event'>
  events: RuleFields['events']
  onChange: (next: Condition) => void
}) {
  return (
    <>
      <Select
        aria-label="Did or did not"
        value={c.did ? 'did' : 'did not'}
        options={[
          { value: 'did', label: 'did' },
          { value: 'did not', label: 'never did' },
        ]}
        onChange={(v: string) => onChange({ ...c, did: v === 'did' })}
        style={{ width: 110 }}
      />
      <EventSelect events={events} value={c.event} onChange={(event) => onChange({ ...c, event })} />
      {c.did && (
        <Flex gap={6} align="center">
          <Select
            aria-label="How many times"
            value={c.timesOp}
            options={Object.entries(TIMES_LABELS).map(([value, label]) => ({ value, label }))}
            onChange={(timesOp: string) => onChange({ ...c, timesOp })}
            style={{ width: 110 }}
          />
          <InputNumber
            aria-label="Times"
            min={0}
            precision={0}
            value={c.times}
            onChange={(times) => onChange({ ...c, times })}
            style={{ width: 80 }}
          />
          times
        </Flex>
      )}
      <WindowInputs lastDays={c.lastDays} onChange={(lastDays) => onChange({ ...c, lastDays })} />
    </>
  )
}

function EventSelect({
  events,
  value,
  onChange,
}: {
  events: RuleFields['events']
  value: string
  onChange: (event: string) => void
}) {
  return (
    <Select
      aria-label="Event"
      showSearch={{ optionFilterProp: 'label' }}
      placeholder="Choose an event"
      value={value || undefined}
      options={[
        { value: '*', label: 'any event' },
        ...events.map((e) => ({
          value: e.name,
          label: `${e.name.replaceAll('_', ' ')} (${count(e.events)})`,
        })),
      ]}
      onChange={onChange}
      style={{ width: 220 }}
    />
  )
}

/** An event window: the last N days (today included), or ever. */
function WindowInputs({
  lastDays,
  onChange,
}: {
  lastDays: number | null
  onChange: (lastDays: number | null) => void
}) {
  return (
    <Flex gap={6} align="center">
      <Select
        aria-label="When"
        value={lastDays === null ? 'ever' : 'last'}
        options={[
          { value: 'last', label: 'in the last' },
          { value: 'ever', label: 'ever' },
        ]}
        onChange={(v: string) => onChange(v === 'ever' ? null : 30)}
        style={{ width: 120 }}
      />
      {lastDays !== null && (
        <InputNumber
          aria-label="Within the last days"
          min={1}
          precision={0}
          value={lastDays}
          onChange={(days) => onChange(days ?? 1)}
          suffix="days"
          style={{ width: 120 }}
        />
      )}
    </Flex>
  )
}

/** A sum, average, minimum or maximum of the revenue of some events, compared with an
 * amount: "total revenue of order events in the last 90 days is more than 500". */
function TotalInputs({
  condition: c,
  events,
  onChange,
}: {
  condition: Of<'total'>
  events: RuleFields['events']
  onChange: (next: Condition) => void
}) {
  const [low, high] = Array.isArray(c.value) ? c.value : [c.value, null]
  return (
    <>
      <Select
        aria-label="Measure"
        value={c.fn}
        options={Object.entries(TOTAL_LABELS).map(([value, label]) => ({ value, label }))}
        onChange={(fn: string) => onChange({ ...c, fn })}
        style={{ width: 170 }}
      />
      <span>of</span>
      <EventSelect events={events} value={c.event} onChange={(event) => onChange({ ...c, event })} />
      <Select
        aria-label="Operator"
        value={c.op}
        options={TOTAL_OPS.map((op) => ({ value: op, label: OP_LABELS[op] }))}
        onChange={(op: string) => onChange({ ...c, op, value: op === 'between' ? [] : null })}
        style={{ width: 150 }}
      />
      {c.op === 'between' ? (
        <Flex gap={6} align="center">
          <InputNumber aria-label="From amount" value={low ?? null} onChange={(v) => onChange({ ...c, value: [v, high ?? null] })} style={{ width: 110 }} />
          and
          <InputNumber aria-label="To amount" value={high ?? null} onChange={(v) => onChange({ ...c, value: [low ?? null, v] })} style={{ width: 110 }} />
        </Flex>
      ) : (
        <InputNumber aria-label="Amount" value={low ?? null} onChange={(v) => onChange({ ...c, value: v })} style={{ width: 120 }} />
      )}
      <WindowInputs lastDays={c.lastDays} onChange={(lastDays) => onChange({ ...c, lastDays })} />
    </>
  )
}

function SegmentInputs({
  condition: c,
  segments,
  onChange,
}: {
  condition: Of<'segment'>
  segments: string[]
  onChange: (next: Condition) => void
}) {
  return (
    <>
      <Select
        aria-label="Is or is not in"
        value={c.member ? 'in' : 'not in'}
        options={[
          { value: 'in', label: 'is in' },
          { value: 'not in', label: 'is not in' },
        ]}
        onChange={(v: string) => onChange({ ...c, member: v === 'in' })}
        style={{ width: 110 }}
      />
      <Select
        aria-label="Segment"
        showSearch={{ optionFilterProp: 'label' }}
        placeholder="Choose a segment"
        value={c.segment || undefined}
        options={segments.map((name) => ({ value: name, label: name }))}
        onChange={(segment: string) => onChange({ ...c, segment })}
        style={{ width: 240 }}
      />
    </>
  )
}

function BucketInputs({
  condition: c,
  onChange,
}: {
  condition: Of<'bucket'>
  onChange: (next: Condition) => void
}) {
  return (
    <Flex gap={6} align="center" wrap>
      <span>the slice from</span>
      <InputNumber
        aria-label="From percent"
        min={0}
        max={100}
        step={1}
        value={c.from}
        onChange={(from) => onChange({ ...c, from })}
        suffix="%"
        style={{ width: 100 }}
      />
      <span>to</span>
      <InputNumber
        aria-label="To percent"
        min={0}
        max={100}
        step={1}
        value={c.to}
        onChange={(to) => onChange({ ...c, to })}
        suffix="%"
        style={{ width: 100 }}
      />
      <Tooltip title="Another salt draws another, independent slice; the same salt keeps the same customers on every refresh.">
        <Input
          aria-label="Salt"
          placeholder="salt, e.g. holdout-2026"
          value={c.salt}
          onChange={(e) => onChange({ ...c, salt: e.target.value })}
          style={{ width: 190 }}
        />
      </Tooltip>
    </Flex>
  )
}
