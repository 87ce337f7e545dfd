import { useEffect, useMemo } from 'react'
import {
  Alert,
  AutoComplete,
  Button,
  Card,
  Col,
  Form,
  Input,
  InputNumber,
  Row,
  Select,
  Space,
  Statistic,
  Typography,
} from 'antd'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { Bar, BarChart, CartesianGrid, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts'
import { api, problemText, unwrap } from '../../api/client'
import type { components } from '../../api/schema'
import { Loading, Failed } from '../../ui/states'
import { seriesColor } from '../../ui/colors'
import { ChangeFailed, Section } from './parts'
import { count, when } from '../../ui/format'
import { useWorkspace } from './common'

type Criterion = components['schemas']['Criterion']
type Icp = components['schemas']['IcpPublic']
type Kind = 'in' | 'range' | 'scale' | 'map' | 'exists'
/** A criterion as the form holds it: one shape for every kind. */
type Draft = {
  on: string
  kind: Kind
  weight: number
  label?: string
  values?: string[]
  low?: number
  high?: number
  map?: string
}

const KINDS: { value: Kind; label: string; meaning: string }[] = [
  { value: 'in', label: 'is one of', meaning: '1 when the value is one of these, else 0' },
  { value: 'range', label: 'is between', meaning: '1 when low ≤ value ≤ high, else 0' },
  { value: 'scale', label: 'scales from … to', meaning: '0 at the first number, 1 at the second, linear between' },
  { value: 'map', label: 'scores each value', meaning: 'a score from 0 to 1 per value; values not listed score 0' },
  { value: 'exists', label: 'is known', meaning: '1 when the value is present, else 0' },
]
// Traits Strata computes for every customer that make sense in a score (the rest of
// the list, dates and most_frequent, are no measures of fit).
const TRAITS = [
  'total_orders',
  'total_revenue',
  'average_order_value',
  'days_since_last_order',
  'distinct_products',
  'rfm_recency',
  'rfm_frequency',
  'rfm_monetary',
  'rfm_segment',
]
const BANDS = ['0–20', '20–40', '40–60', '60–80', '80–100']
const NOT_ATTRIBUTES = new Set(['customer_id', 'external_id', 'created_at', 'updated_at'])

function toDraft(c: Criterion): Draft {
  const base = { on: c.on, weight: c.weight, label: c.label ?? undefined }
  if (c.in) return { ...base, kind: 'in', values: c.in.map(String) }
  if (c.range) return { ...base, kind: 'range', low: c.range[0], high: c.range[1] }
  if (c.scale) return { ...base, kind: 'scale', low: c.scale[0], high: c.scale[1] }
  if (c.map)
    return {
      ...base,
      kind: 'map',
      map: Object.entries(c.map)
        .map(([k, v]) => `${k}=${v}`)
        .join(', '),
    }
  return { ...base, kind: 'exists' }
}

// A number typed as text is sent as a number, so `in` matches numeric columns too.
function typed(value: string): string | number {
  const n = Number(value)
  return value.trim() !== '' && Number.isFinite(n) ? n : value
}

function toCriterion(r: Draft): Criterion {
  const c: Criterion = { on: r.on.trim(), weight: r.weight, label: r.label?.trim() || null }
  if (r.kind === 'in') return { ...c, in: (r.values ?? []).map(typed) }
  if (r.kind === 'range') return { ...c, range: [r.low ?? 0, r.high ?? 0] }
  if (r.kind === 'scale') return { ...c, scale: [r.low ?? 0, r.high ?? 0] }
  if (r.kind === 'map') {
    const pairs = (r.map ?? '').split(/[,\n]/).map((p) => p.split('='))
    return {
      ...c,
      map: Object.fromEntries(pairs.filter((p) => p.length === 2).map(([k, v]) => [k.trim(), Number(v)])),
    }
  }
  return { ...c, exists: true }
}

/** The ideal-customer-profile score: the criteria and their weights as a form, saved
 * with PUT /settings/icp, and how the saved score spreads over the customers. */
export default function IcpTab() {
  const { workspaceId } = useWorkspace()
  const path = { workspace_id: workspaceId }
  const icp = useQuery({
    queryKey: ['settings-icp', workspaceId],
    queryFn: async (): Promise<Icp | null> => {
      const { data, error, response } = await api.GET('/api/v1/workspaces/{workspace_id}/settings/icp', {
        params: { path },
      })
      if (response.status === 404) return null // no criteria yet: the form starts empty
      if (error || !data) throw new Error(problemText(error))
      return data
    },
  })
  // The workspace's customer columns, from one customer: what criteria may be on.
  const columns = useQuery({
    queryKey: ['settings-customer-columns', workspaceId],
    queryFn: () =>
      unwrap(api.GET('/api/v1/workspaces/{workspace_id}/customers', { params: { path, query: { limit: 1 } } })),
    select: (page) => Object.keys(page.items[0] ?? {}).filter((k) => !NOT_ATTRIBUTES.has(k)),
  })
  if (icp.isError) return <Failed error={icp.error} />
  if (icp.isPending) return <Loading what="the ICP criteria" />
  return (
    <Row gutter={[24, 24]}>
      <Col xs={24} xl={14}>
        <CriteriaForm icp={icp.data} fields={[...(columns.data ?? []), ...TRAITS]} />
      </Col>
      <Col xs={24} xl={10}>
        <Spread icp={icp.data} />
      </Col>
    </Row>
  )
}

function CriteriaForm({ icp, fields }: { icp: Icp | null; fields: string[] }) {
  const { workspaceId, role } = useWorkspace()
  const client = useQueryClient()
  const [form] = Form.useForm<{ criteria: Draft[] }>()
  const stored = useMemo(() => (icp?.config.criteria ?? []).map(toDraft), [icp])
  useEffect(() => form.setFieldsValue({ criteria: stored }), [form, stored])
  const rows = Form.useWatch('criteria', form) ?? []
  const total = rows.reduce((sum, r) => sum + (r?.weight ?? 0), 0)
  const save = useMutation({
    mutationFn: (criteria: Draft[]) =>
      unwrap(
        api.PUT('/api/v1/workspaces/{workspace_id}/settings/icp', {
          params: { path: { workspace_id: workspaceId } },
          body: { criteria: criteria.map(toCriterion) },
        }),
      ),
    onSuccess: (answer) => client.setQueryData(['settings-icp', workspaceId], answer),
  })
  const canWrite = role !== 'viewer' && role !== 'marketer'
  const options = fields.map((f) => ({ value: f }))
  return (
    <Section
      title="Criteria and weights"
      intro={
        <>
          Each criterion scores a customer from 0 to 1; the ICP score is{' '}
          <Typography.Text code>100 × Σ (weight × criterion) / Σ weight</Typography.Text>, from 0 to 100. A
          criterion’s weight is its share of the score. Saving scores every customer again at once: the score is
          the trait <Typography.Text code>icp_score</Typography.Text>, usable in segment rules and tiers.
        </>
      }
    >
      {save.isSuccess && !save.isPending && (
        <Alert type="success" showIcon title="Saved: every customer is scored with these criteria now." />
      )}
      <ChangeFailed error={save.error} />
      <Form form={form} layout="vertical" disabled={!canWrite} onFinish={(v) => save.mutate(v.criteria)}>
        <Form.List name="criteria">
          {(items, { add, remove }) => (
            <Space orientation="vertical" style={{ width: '100%' }}>
              {items.length === 0 && (
                <Alert
                  type="info"
                  showIcon
                  title="No criteria yet: add what makes a customer a good fit (their industry, size, spend…)."
                />
              )}
              {items.map(({ key, name }, i) => {
                const row = rows[i]
                const share = total > 0 && row?.weight ? Math.round((100 * row.weight) / total) : 0
                const kind = KINDS.find((k) => k.value === row?.kind)
                return (
                  <Card
                    key={key}
                    size="small"
                    title={`Criterion ${i + 1}`}
                    extra={
                      <Space>
                        <Typography.Text type="secondary">{share}% of the score</Typography.Text>
                        <Button size="small" type="link" danger onClick={() => remove(name)}>
                          Remove
                        </Button>
                      </Space>
                    }
                  >
                    <Row gutter={12}>
                      <Col xs={24} sm={8}>
                        <Form.Item
                          label="Field"
                          name={[name, 'on']}
                          rules={[{ required: true, message: 'Pick an attribute or trait.' }]}
                        >
                          <AutoComplete
                            aria-label={`Field of criterion ${i + 1}`}
                            options={options}
                            filterOption={(input, option) => String(option?.value).includes(input)}
                          />
                        </Form.Item>
                      </Col>
                      <Col xs={24} sm={8}>
                        <Form.Item label="Rule" name={[name, 'kind']} rules={[{ required: true }]}>
                          <Select
                            aria-label={`Rule of criterion ${i + 1}`}
                            options={KINDS.map((k) => ({ value: k.value, label: k.label }))}
                          />
                        </Form.Item>
                      </Col>
                      <Col xs={24} sm={8}>
                        <Form.Item
                          label="Weight"
                          name={[name, 'weight']}
                          rules={[{ required: true, message: 'A weight above 0.' }]}
                        >
                          <InputNumber
                            aria-label={`Weight of criterion ${i + 1}`}
                            min={0.1}
                            step={0.5}
                            style={{ width: '100%' }}
                          />
                        </Form.Item>
                      </Col>
                      <Col xs={24}>
                        <KindFields name={name} kind={row?.kind} index={i + 1} />
                        {kind && (
                          <Typography.Text type="secondary" style={{ display: 'block', marginBottom: 8 }}>
                            Scores {kind.meaning}; a missing value scores 0.
                          </Typography.Text>
                        )}
                      </Col>
                      <Col xs={24}>
                        <Form.Item label="Label (optional)" name={[name, 'label']} style={{ marginBottom: 0 }}>
                          <Input placeholder="How the criterion reads, e.g. “we can call them”" />
                        </Form.Item>
                      </Col>
                    </Row>
                  </Card>
                )
              })}
              <Space wrap>
                <Button onClick={() => add({ kind: 'in', weight: 1 })}>Add a criterion</Button>
                <Button type="primary" htmlType="submit" loading={save.isPending} disabled={!canWrite || items.length === 0}>
                  Save criteria
                </Button>
              </Space>
              {!canWrite && (
                <Typography.Text type="secondary">Only owners, admins and analysts change the score.</Typography.Text>
              )}
            </Space>
          )}
        </Form.List>
      </Form>
    </Section>
  )
}

/** The inputs of one kind of criterion. */
function KindFields({ name, kind, index }: { name: number; kind?: Kind; index: number }) {
  if (kind === 'in')
    return (
      <Form.Item label="Values" name={[name, 'values']} rules={[{ required: true, message: 'Give at least one value.' }]}>
        <Select mode="tags" aria-label={`Values of criterion ${index}`} open={false} placeholder="Type a value, then Enter" />
      </Form.Item>
    )
  if (kind === 'range' || kind === 'scale')
    return (
      <Space wrap>
        <Form.Item label={kind === 'range' ? 'From' : 'Scores 0 at'} name={[name, 'low']} rules={[{ required: true }]}>
          <InputNumber aria-label={`Low end of criterion ${index}`} />
        </Form.Item>
        <Form.Item label={kind === 'range' ? 'To' : 'Scores 1 at'} name={[name, 'high']} rules={[{ required: true }]}>
          <InputNumber aria-label={`High end of criterion ${index}`} />
        </Form.Item>
      </Space>
    )
  if (kind === 'map')
    return (
      <Form.Item
        label="Scores"
        name={[name, 'map']}
        rules={[{ required: true, message: 'Give value=score pairs.' }]}
        extra="value=score pairs, separated by commas: business=1, pro=0.6, basic=0.2"
      >
        <Input aria-label={`Scores of criterion ${index}`} />
      </Form.Item>
    )
  return null
}

function Spread({ icp }: { icp: Icp | null }) {
  if (!icp)
    return (
      <Section title="How customers score">
        <Typography.Text type="secondary">The spread of scores shows here once criteria are saved.</Typography.Text>
      </Section>
    )
  const bands = BANDS.map((band) => ({
    band,
    customers: icp.bands.find((b) => b.band === band)?.customers ?? 0,
  }))
  return (
    <Section title="How customers score" intro={`Scored as of ${when(icp.as_of)}.`}>
      <Space size="large" wrap>
        <Statistic title="Customers scored" value={count(icp.customers)} />
        <Statistic title="Average score" value={icp.average.toFixed(1)} suffix="/ 100" />
      </Space>
      <div aria-label="Customers per score band" style={{ width: '100%', height: 240 }}>
        <ResponsiveContainer>
          <BarChart data={bands} margin={{ left: 8, right: 8 }}>
            <CartesianGrid strokeDasharray="3 3" vertical={false} />
            <XAxis dataKey="band" />
            <YAxis allowDecimals={false} tickFormatter={(n: number) => count(n)} />
            <Tooltip formatter={(n) => [count(Number(n)), 'customers']} />
            <Bar dataKey="customers" fill={seriesColor(0)} isAnimationActive={false} />
          </BarChart>
        </ResponsiveContainer>
      </div>
      <ul style={{ margin: 0, paddingLeft: 20 }}>
        {icp.criteria.map((c, i) => (
          <li key={i}>
            <Typography.Text>
              weight {c.weight}: {c.rule}
            </Typography.Text>
          </li>
        ))}
      </ul>
    </Section>
  )
}
