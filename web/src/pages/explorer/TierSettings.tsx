import { useState } from 'react'
import {
  Alert,
  Button,
  Card,
  Form,
  Grid,
  Input,
  InputNumber,
  Popconfirm,
  Space,
  Typography,
} from 'antd'
import { useMutation, useQueryClient } from '@tanstack/react-query'
import { api, unwrap } from '../../api/client'
import { Nothing, Query } from '../../ui/states'
import { num, text, type Segment } from '../../ui/workspace'
import { useTierSets } from './data'
import { count } from '../../ui/format'
import { FieldSelect } from './FieldSelect'
import { fieldLabel } from './fields'
import { segmentColor } from '../../ui/colors'
import { Swatch } from '../../ui/Swatch'
import { useTierChange } from './tierChange'
import type { components } from '../../api/schema'
import { ConfirmButton } from '../../ui/ConfirmButton'

type TierSet = components['schemas']['TierSetPublic']
type Draft = { name: string; max: number | null }[]

function draftOf(set: TierSet): Draft {
  return set.tiers.map((t) => ({ name: text(t, 'name'), max: num(t, 'max') }))
}

/** What is wrong with a draft, in plain words, before the API is asked. */
function problem(draft: Draft): string | null {
  const names = draft.map((t) => t.name.trim())
  if (draft.length < 2) return 'A tier set needs at least two tiers.'
  if (names.some((n) => !n)) return 'Every tier needs a name.'
  if (new Set(names).size < names.length) return 'Two tiers have the same name.'
  for (let i = 0; i < draft.length - 1; i++) {
    const max = draft[i].max
    if (max === null) return `${names[i]} needs a maximum (only the last tier is open-ended).`
    const before = i > 0 ? draft[i - 1].max : null
    if (before !== null && max <= before)
      return `${names[i]}'s maximum must be above ${names[i - 1]}'s (${count(before)}).`
  }
  return null
}

/** Every tier set of the workspace, its thresholds editable, and a form for a new one. */
export function TierSettings({
  workspaceId,
  segments,
  onCompare,
}: {
  workspaceId: number
  segments: Segment[]
  onCompare: (ids: number[]) => void
}) {
  const sets = useTierSets(workspaceId)
  return (
    <Space orientation="vertical" size="large" style={{ width: '100%' }}>
      <Typography.Paragraph type="secondary" style={{ margin: 0, maxWidth: 760 }}>
        A tier set cuts one number (company size, revenue, ICP score…) into named ranges, each
        a segment. A tier holds the customers above the previous tier’s maximum, up to its own
        maximum included; the last tier has no upper bound. Customers without a value are in
        no tier. Applying new thresholds re-evaluates the tiers at once.
      </Typography.Paragraph>
      <Query query={sets} what="the tier sets">
        {(page) => (
          <Space orientation="vertical" size="large" style={{ width: '100%' }}>
            {page.items.length === 0 ? (
              <Nothing>No tier sets yet: create one below.</Nothing>
            ) : (
              page.items.map((set) => (
                <TierSetEditor
                  key={set.name}
                  workspaceId={workspaceId}
                  set={set}
                  segments={segments.filter((s) => s.family === `tiers:${set.name}`)}
                  onCompare={onCompare}
                />
              ))
            )}
            {/* Once a set is created it shows above with its own editor, and this form
                starts afresh. */}
            <NewTierSet
              key={`new:${page.items.map((t) => t.name).join()}`}
              workspaceId={workspaceId}
              taken={page.items.map((t) => t.name)}
            />
          </Space>
        )}
      </Query>
    </Space>
  )
}

function TierSetEditor({
  workspaceId,
  set,
  segments,
  onCompare,
}: {
  workspaceId: number
  set: TierSet
  segments: Segment[]
  onCompare: (ids: number[]) => void
}) {
  const change = useTierChange(workspaceId)
  const client = useQueryClient()
  const saved = JSON.stringify([set.on, set.tiers])
  const [draft, setDraft] = useState(() => draftOf(set))
  const [on, setOn] = useState(set.on)
  // When the stored set changes (applied, reset), the form starts again from it.
  const [draftOfSaved, setDraftOfSaved] = useState(saved)
  if (draftOfSaved !== saved) {
    setDraftOfSaved(saved)
    setDraft(draftOf(set))
    setOn(set.on)
  }
  const remove = useMutation({
    mutationFn: () =>
      unwrap(
        api.DELETE('/api/v1/workspaces/{workspace_id}/tiers/{name}', {
          params: { path: { workspace_id: workspaceId, name: set.name } },
        }),
      ),
    onSuccess: () => {
      for (const key of ['tiers', 'segments'])
        void client.invalidateQueries({ queryKey: [key, workspaceId] })
    },
  })
  const changed = on !== set.on || JSON.stringify(draft) !== JSON.stringify(draftOf(set))
  const wrong = problem(draft)
  const byName = new Map(segments.map((s) => [s.name, s]))
  const edit = (i: number, patch: Partial<Draft[number]>) =>
    setDraft(draft.map((t, j) => (j === i ? { ...t, ...patch } : t)))
  const addTier = () => {
    const last = draft.length - 1
    const before = last > 0 ? (draft[last - 1].max ?? 0) : 0
    const tier = { name: `Tier ${draft.length + 1}`, max: before > 0 ? before * 2 : 1 }
    setDraft([...draft.slice(0, last), tier, draft[last]])
  }
  const apply = () =>
    change.save(set.name, {
      on,
      tiers: draft.map((t, i) =>
        i === draft.length - 1 ? { name: t.name.trim() } : { name: t.name.trim(), max: t.max },
      ),
    })

  return (
    <Card
      title={`Tier set “${set.name}”`}
      extra={
        <Typography.Text type="secondary">
          on {fieldLabel(set.on).toLowerCase()}
        </Typography.Text>
      }
    >
      <Space orientation="vertical" size="middle" style={{ width: '100%' }}>
        <Space wrap>
          <label htmlFor={`tier-on-${set.name}`}>Cut customers by</label>
          <FieldSelect id={`tier-on-${set.name}`} value={on} onChange={setOn} />
        </Space>
        <div role="list" aria-label={`Tiers of ${set.name}`}>
          {draft.map((tier, i) => (
            <TierRow
              key={i}
              index={i}
              tier={tier}
              before={i > 0 ? draft[i - 1].max : null}
              last={i === draft.length - 1}
              segment={byName.get(tier.name)}
              onChange={(patch) => edit(i, patch)}
              onRemove={draft.length > 2 ? () => setDraft(draft.filter((_, j) => j !== i)) : null}
            />
          ))}
          <Button size="small" onClick={addTier}>
            Add a tier
          </Button>
        </div>
        <TierShares
          segments={draft.map((t) => byName.get(t.name)).filter((s) => s !== undefined)}
        />
        {changed && wrong && <Alert type="warning" showIcon title={wrong} />}
        {change.outcome && (
          <Alert type={change.outcome.type} showIcon title={change.outcome.text} />
        )}
        {remove.isError && <Alert type="error" showIcon title={remove.error.message} />}
        <Space wrap>
          <Button
            type="primary"
            onClick={apply}
            disabled={!changed || wrong !== null}
            loading={change.running}
          >
            Apply thresholds
          </Button>
          <Button
            onClick={() => {
              setDraft(draftOf(set))
              setOn(set.on)
            }}
            disabled={!changed || change.running}
          >
            Undo changes
          </Button>
          <Popconfirm
            title="Reset to the default tiers?"
            description="Small Business ≤ 1, Mid-Market ≤ 10, Large Enterprise: on the same field."
            okText="Reset"
            onConfirm={() => change.save(set.name, { on: set.on })}
          >
            <Button disabled={change.running}>Reset to defaults</Button>
          </Popconfirm>
          <Button
            disabled={segments.length < 2}
            onClick={() => onCompare(segments.map((s) => s.id))}
          >
            Compare these tiers
          </Button>
          <ConfirmButton
            verb="Delete"
            question={`Delete the tier set “${set.name}”?`}
            consequence="Its tier segments and their history are deleted too."
            onConfirm={() => remove.mutate()}
            pending={remove.isPending}
          />
        </Space>
      </Space>
    </Card>
  )
}

/** One tier: its name, its range (the maximum editable but for the last) and its size. Three
 * groups that sit on one line, or wrap under each other at phone width. */
function TierRow({
  index,
  tier,
  before,
  last,
  segment,
  onChange,
  onRemove,
}: {
  index: number
  tier: Draft[number]
  before: number | null
  last: boolean
  segment: Segment | undefined
  onChange: (patch: Partial<Draft[number]>) => void
  onRemove: (() => void) | null
}) {
  const wide = Grid.useBreakpoint().sm ?? true
  const group = { display: 'flex', alignItems: 'center', gap: 8 } as const
  return (
    <div role="listitem" style={{ ...group, flexWrap: 'wrap', columnGap: 12, marginBottom: 8 }}>
      <span style={group}>
        {segment ? <Swatch id={segment.id} gap={6} /> : <span style={{ width: 16 }} />}
        <Input
          aria-label={`Tier ${index + 1} name`}
          value={tier.name}
          onChange={(e) => onChange({ name: e.target.value })}
          style={{ width: 180 }}
        />
        <Button
          type="text"
          aria-label={`Remove ${tier.name}`}
          disabled={!onRemove}
          onClick={() => onRemove?.()}
        >
          ✕
        </Button>
      </span>
      <span style={group}>
        <Typography.Text type="secondary" style={{ width: wide ? 110 : undefined }}>
          {before === null ? 'up to' : `above ${count(before)}${last ? '' : ', up to'}`}
        </Typography.Text>
        {last ? (
          <Typography.Text type="secondary" style={{ width: wide ? 120 : undefined }}>
            no upper bound
          </Typography.Text>
        ) : (
          <InputNumber
            aria-label={`${tier.name || `Tier ${index + 1}`} maximum`}
            value={tier.max}
            onChange={(max) => onChange({ max: typeof max === 'number' ? max : null })}
            style={{ width: wide ? 120 : 96 }}
          />
        )}
      </span>
      <Typography.Text>{segment ? `${count(segment.customers)} customers` : ''}</Typography.Text>
    </div>
  )
}

/** How the tiers' customers split, as one bar in the tiers' colours. */
function TierShares({ segments }: { segments: Segment[] }) {
  const total = segments.reduce((sum, s) => sum + (s.customers ?? 0), 0)
  if (total === 0) return null
  return (
    <div
      aria-hidden
      style={{ display: 'flex', height: 10, borderRadius: 5, overflow: 'hidden', maxWidth: 640 }}
    >
      {segments.map((s) => (
        <div
          key={s.id}
          title={`${s.name}: ${count(s.customers)} customers`}
          style={{
            width: `${((s.customers ?? 0) / total) * 100}%`,
            background: segmentColor(s.id),
          }}
        />
      ))}
    </div>
  )
}

/** A new tier set with the default tiers, to edit once it exists. */
function NewTierSet({ workspaceId, taken }: { workspaceId: number; taken: string[] }) {
  const change = useTierChange(workspaceId)
  const wide = Grid.useBreakpoint().sm ?? true
  return (
    <Card title="New tier set">
      <Form
        layout={wide ? 'inline' : 'vertical'}
        initialValues={{ name: taken.includes('size') ? '' : 'size', on: 'company_size' }}
        onFinish={(values: { name: string; on: string }) =>
          change.save(values.name.trim(), { on: values.on })
        }
        style={{ rowGap: 12 }}
      >
        <Form.Item
          label="Name"
          name="name"
          rules={[{ required: true, whitespace: true, message: 'Name the tier set.' }]}
        >
          <Input style={{ width: 160 }} />
        </Form.Item>
        <Form.Item
          label="Cut customers by"
          name="on"
          rules={[{ required: true, message: 'Choose a field.' }]}
        >
          <FieldSelect />
        </Form.Item>
        <Form.Item>
          <Button type="primary" htmlType="submit" loading={change.running}>
            Create with the default tiers
          </Button>
        </Form.Item>
      </Form>
      {change.outcome?.type === 'error' && (
        <Alert style={{ marginTop: 12 }} type="error" showIcon title={change.outcome.text} />
      )}
    </Card>
  )
}
