// The builder's own tree, and its translation to and from the API's rule language
// (docs/segments.md). The API types a rule as a free-form object, so the shapes below
// are the editor's state, not API data: each node carries a key for React, a group
// carries its NOT, and anything the editor has no form for is kept whole as `kept`.
import type { components } from '../../api/schema'

export type FieldKind = components['schemas']['RuleField']['kind']
export type RuleFields = components['schemas']['RuleFields']
/** A rule as the API takes it (`SegmentCreate.rule`). */
export type ApiRule = NonNullable<components['schemas']['SegmentCreate']['rule']>

type Value = string | number | boolean | null | (string | number)[]

export type Condition =
  | { type: 'property'; source: 'attribute' | 'trait'; field: string; op: string; value: Value; yearly: boolean }
  | { type: 'event'; did: boolean; event: string; timesOp: string; times: number | null; lastDays: number | null }
  | { type: 'total'; fn: string; event: string; op: string; value: number | (number | null)[] | null; lastDays: number | null }
  | { type: 'segment'; member: boolean; segment: string }
  | { type: 'bucket'; from: number | null; to: number | null; salt: string }
  | { type: 'kept'; rule: ApiRule }

export type Leaf = { kind: 'leaf'; key: string; condition: Condition }
export type Group = { kind: 'group'; key: string; match: 'and' | 'or'; negate: boolean; children: Node[] }
export type Node = Leaf | Group

let counter = 0
const nextKey = () => `n${++counter}`

export const emptyProperty = (): Condition => ({
  type: 'property', source: 'attribute', field: '', op: 'eq', value: null, yearly: false,
})
export const emptyEvent = (): Condition => ({
  type: 'event', did: true, event: '', timesOp: 'gte', times: 1, lastDays: 30,
})
export const emptyTotal = (): Condition => ({
  type: 'total', fn: 'sum', event: 'order', op: 'gt', value: null, lastDays: 90,
})
export const emptySegment = (): Condition => ({ type: 'segment', member: true, segment: '' })
export const emptyBucket = (): Condition => ({ type: 'bucket', from: 0, to: 10, salt: '' })

export const leaf = (condition: Condition): Leaf => ({ kind: 'leaf', key: nextKey(), condition })
export const group = (match: 'and' | 'or', children: Node[] = []): Group => ({
  kind: 'group', key: nextKey(), match, negate: false, children,
})
/** What a new segment starts from: one empty condition to fill in. */
export const starter = (): Group => group('and', [leaf(emptyProperty())])

// -- operators, in plain words, by the kind of value they compare ----------------------------
export const OP_LABELS: Record<string, string> = {
  eq: 'is', neq: 'is not', in: 'is one of', not_in: 'is none of',
  contains: 'contains', starts_with: 'starts with', ends_with: 'ends with',
  lt: 'is less than', lte: 'is at most', gt: 'is more than', gte: 'is at least',
  between: 'is between', before: 'is before', after: 'is after',
  within_last_days: 'is in the last … days', within_next_days: 'is in the next … days',
  more_than_days_ago: 'is more than … days ago', exists: 'is known', missing: 'is unknown',
}
const DATE_OPS = ['eq', 'before', 'after', 'between', 'within_last_days', 'within_next_days',
  'more_than_days_ago', 'exists', 'missing']
export const OPS_BY_KIND: Record<FieldKind, string[]> = {
  text: ['eq', 'neq', 'in', 'not_in', 'contains', 'starts_with', 'ends_with', 'exists', 'missing'],
  number: ['eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'between', 'exists', 'missing'],
  date: DATE_OPS,
  timestamp: DATE_OPS,
  boolean: ['eq', 'exists', 'missing'],
}
export const DAY_OPS = ['within_last_days', 'within_next_days', 'more_than_days_ago']
/** How many times an event happened, in words (`performed`'s `times.op`). */
export const TIMES_LABELS: Record<string, string> = {
  gte: 'at least', lte: 'at most', eq: 'exactly', gt: 'more than', lt: 'fewer than',
}

/** What an event total measures (`aggregate`'s `fn`, of the events' revenue). */
export const TOTAL_LABELS: Record<string, string> = {
  sum: 'total revenue', avg: 'average revenue', min: 'smallest revenue', max: 'largest revenue',
}
export const TOTAL_OPS = ['gt', 'gte', 'lt', 'lte', 'eq', 'between']

/** The value an operator starts with when it is picked. */
export function valueFor(op: string, kind: FieldKind): Value {
  if (op === 'exists' || op === 'missing') return null
  if (op === 'in' || op === 'not_in' || op === 'between') return []
  if (DAY_OPS.includes(op)) return 30
  if (kind === 'boolean') return true
  return null
}

// -- editor tree -> API rule ---------------------------------------------------------------
function conditionRule(c: Condition): ApiRule {
  switch (c.type) {
    case 'property': {
      const rule: ApiRule = { type: c.source, [c.source]: c.field, op: c.op }
      if (c.op !== 'exists' && c.op !== 'missing') rule.value = c.value
      if (c.yearly && (c.op === 'within_last_days' || c.op === 'within_next_days')) rule.yearly = true
      return rule
    }
    case 'event': {
      const window = c.lastDays ? { window: { last_days: c.lastDays } } : {}
      if (!c.did) return { type: 'not_performed', event: c.event, ...window }
      // "At least once" is the language's default, so it is left out.
      const once = c.timesOp === 'gte' && c.times === 1
      const times = once ? {} : { times: { op: c.timesOp, value: c.times } }
      return { type: 'performed', event: c.event, ...times, ...window }
    }
    case 'total': {
      const window = c.lastDays ? { window: { last_days: c.lastDays } } : {}
      return { type: 'aggregate', event: c.event, fn: c.fn, op: c.op, value: c.value, ...window }
    }
    case 'segment':
      return { type: c.member ? 'in_segment' : 'not_in_segment', segment: c.segment }
    case 'bucket':
      return { type: 'random_bucket', from: c.from, to: c.to, salt: c.salt }
    case 'kept':
      return c.rule
  }
}

/** The API rule of an editor tree. A one-condition group is written as that condition,
 * and an empty group stays empty so the API says what is missing. */
export function toRule(node: Node): ApiRule {
  if (node.kind === 'leaf') return conditionRule(node.condition)
  const inner: ApiRule =
    node.children.length === 1
      ? toRule(node.children[0])
      : { type: node.match, conditions: node.children.map(toRule) }
  return node.negate ? { type: 'not', condition: inner } : inner
}

// -- API rule -> editor tree ---------------------------------------------------------------
const isObject = (v: unknown): v is ApiRule => typeof v === 'object' && v !== null && !Array.isArray(v)
const keys = (rule: ApiRule) => Object.keys(rule).sort().join(',')

function eventCondition(rule: ApiRule, did: boolean): Condition | null {
  const allowed = did ? ['event', 'times', 'type', 'window'] : ['event', 'type', 'window']
  if (!Object.keys(rule).every((k) => allowed.includes(k)) || typeof rule.event !== 'string') return null
  const window = rule.window === undefined ? null : rule.window
  if (window !== null && !(isObject(window) && keys(window) === 'last_days')) return null
  const times = rule.times === undefined ? null : rule.times
  if (times !== null && !(isObject(times) && typeof times.value === 'number' && String(times.op) in TIMES_LABELS)) {
    return null
  }
  return {
    type: 'event', did, event: rule.event,
    timesOp: isObject(times) ? String(times.op) : 'gte',
    times: isObject(times) ? Number(times.value) : 1,
    lastDays: isObject(window) ? Number(window.last_days) : null,
  }
}

function totalCondition(rule: ApiRule): Condition | null {
  const allowed = ['event', 'fn', 'of', 'op', 'type', 'value', 'window']
  if (!Object.keys(rule).every((k) => allowed.includes(k))) return null
  if ((rule.of ?? 'revenue') !== 'revenue' || typeof rule.event !== 'string') return null
  if (!(String(rule.fn) in TOTAL_LABELS) || !TOTAL_OPS.includes(String(rule.op))) return null
  const window = rule.window === undefined ? null : rule.window
  if (window !== null && !(isObject(window) && keys(window) === 'last_days')) return null
  return {
    type: 'total', fn: String(rule.fn), event: rule.event, op: String(rule.op),
    value: rule.value as number | number[], lastDays: isObject(window) ? Number(window.last_days) : null,
  }
}

function leafCondition(rule: ApiRule): Condition {
  const t = rule.type
  if ((t === 'attribute' || t === 'trait') && typeof rule[t] === 'string') {
    const extra = Object.keys(rule).filter((k) => !['type', t, 'op', 'value', 'yearly'].includes(k))
    if (extra.length === 0) {
      return {
        type: 'property', source: t, field: rule[t] as string, op: String(rule.op),
        value: (rule.value ?? null) as Value, yearly: rule.yearly === true,
      }
    }
  }
  if (t === 'performed' || t === 'not_performed') {
    const event = eventCondition(rule, t === 'performed')
    if (event) return event
  }
  if (t === 'aggregate') {
    const total = totalCondition(rule)
    if (total) return total
  }
  if ((t === 'in_segment' || t === 'not_in_segment') && typeof rule.segment === 'string') {
    return { type: 'segment', member: t === 'in_segment', segment: rule.segment }
  }
  if (t === 'random_bucket') {
    return { type: 'bucket', from: Number(rule.from ?? 0), to: Number(rule.to), salt: String(rule.salt ?? '') }
  }
  return { type: 'kept', rule }
}

function fromRule(rule: ApiRule): Node {
  if ((rule.type === 'and' || rule.type === 'or') && Array.isArray(rule.conditions)) {
    return group(rule.type, (rule.conditions as ApiRule[]).map(fromRule))
  }
  if (rule.type === 'not' && isObject(rule.condition)) {
    const inner = fromRule(rule.condition)
    const negated = inner.kind === 'group' ? inner : group('and', [inner])
    return { ...negated, negate: !negated.negate }
  }
  return leaf(leafCondition(rule))
}

/** The editor tree of a stored rule: always a group at the top, to add conditions to. */
export function fromApiRule(rule: ApiRule): Group {
  const node = fromRule(rule)
  return node.kind === 'group' ? node : group('and', [node])
}

// -- counts and gaps ----------------------------------------------------------------------
/** Conditions in the tree, to say "3 conditions" and to know when a save makes sense. */
export function countConditions(node: Node): number {
  return node.kind === 'leaf' ? 1 : node.children.reduce((n, c) => n + countConditions(c), 0)
}

function conditionGaps(c: Condition): string[] {
  const blank = (v: unknown) => v === null || v === undefined || v === ''
  switch (c.type) {
    case 'property': {
      if (!c.field) return ['choose a property']
      if (c.op === 'exists' || c.op === 'missing') return []
      if (c.op === 'in' || c.op === 'not_in') return Array.isArray(c.value) && c.value.length ? [] : ['enter at least one value']
      if (c.op === 'between') return Array.isArray(c.value) && c.value.length === 2 && !c.value.some(blank) ? [] : ['enter both ends of the range']
      return blank(c.value) ? ['enter a value'] : []
    }
    case 'event':
      return [...(c.event ? [] : ['choose an event']), ...(c.did && c.times === null ? ['say how many times'] : [])]
    case 'total': {
      const values = Array.isArray(c.value) ? c.value : [c.value]
      return [...(c.event ? [] : ['choose an event']), ...(values.length === 0 || values.some(blank) ? ['enter an amount'] : [])]
    }
    case 'segment':
      return c.segment ? [] : ['choose a segment']
    case 'bucket':
      return c.from === null || c.to === null ? ['enter the slice, from and to'] : []
    case 'kept':
      return []
  }
}

/** What the user still has to fill in, named as the editor numbers it ("Condition 2.1:
 * choose a property"), so the preview can say so before asking the API. */
export function gaps(root: Group): string[] {
  const walk = (node: Node, path: string): string[] => {
    if (node.kind === 'leaf') return conditionGaps(node.condition).map((gap) => `Condition ${path}: ${gap}`)
    const prefix = path ? `${path}.` : ''
    if (node.children.length === 0) return [path ? `Group ${path} is empty: add a condition or remove it` : 'Add a condition']
    return node.children.flatMap((child, i) => walk(child, `${prefix}${i + 1}`))
  }
  return walk(root, '')
}
