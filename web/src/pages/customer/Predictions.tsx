import { Col, Row, Statistic, Typography } from 'antd'
import { Nothing } from '../../ui/states'
import { num, text } from '../../ui/workspace'
import { decimal, money, percent, when } from '../../ui/format'

type Prediction = Record<string, unknown>
type Factor = { text?: string; effect?: number }

/** How each kind of prediction reads: its label and how its value is written. */
const KINDS: Record<string, { label: string; show: (p: Prediction) => string }> = {
  clv: { label: 'Lifetime value (CLV)', show: (p) => money(num(p, 'value') ?? 0) },
  churn_risk: { label: 'Churn risk', show: (p) => percent(num(p, 'value') ?? 0) },
  p_alive: { label: 'Chance still active', show: (p) => percent(num(p, 'value') ?? 0) },
  expected_purchases: {
    label: 'Expected purchases',
    show: (p) => decimal(num(p, 'value') ?? 0, 2),
  },
  expected_order_value: {
    label: 'Expected order value',
    show: (p) => money(num(p, 'value') ?? 0),
  },
}

/** The customer's stored predictions, each with its model and, where the model says why,
 * the factors that weigh most. */
export function Predictions({ predictions }: { predictions: Prediction[] }) {
  if (predictions.length === 0)
    return <Nothing>No predictions yet: run the CLV, churn or cluster models.</Nothing>
  return (
    <Row gutter={[16, 16]} aria-label="Predictions">
      {predictions.map((p, i) => {
        const { label, value } = describe(p)
        const factors = factorsOf(p)
        // A prediction with its reasons takes the width those sentences need.
        return (
          <Col key={i} xs={24} sm={factors.length > 0 ? 24 : 12} xl={factors.length > 0 ? 24 : 8}>
            <Statistic title={label} value={value} styles={{ content: { fontSize: 20 } }} />
            <Typography.Text type="secondary" style={{ fontSize: 12 }}>
              {text(p, 'model_version')}
              {p.confidence != null && ` · confidence ${percent(num(p, 'confidence') ?? 0, 0)}`}
              {p.predicted_at != null && ` · ${when(text(p, 'predicted_at'))}`}
            </Typography.Text>
            {factors.length > 0 && (
              <ul aria-label={`Why: ${label}`} style={{ margin: '4px 0 0', paddingLeft: 18 }}>
                {factors.map((f, j) => (
                  <li key={j}>{f.text}</li>
                ))}
              </ul>
            )}
          </Col>
        )
      })}
    </Row>
  )
}

function describe(p: Prediction): { label: string; value: string } {
  const type = text(p, 'prediction_type')
  const known = KINDS[type]
  if (known) return { label: known.label, value: known.show(p) }
  const details = (p.details ?? {}) as Record<string, unknown>
  if (type.startsWith('cluster:')) {
    const cluster = text(details, 'cluster') || text(p, 'value')
    return { label: `Cluster (${type.slice(8)})`, value: cluster }
  }
  const value = num(p, 'value')
  // Propensities and other scores between 0 and 1 read best as a chance.
  return {
    label: type.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase()),
    value: value == null ? '–' : value >= 0 && value <= 1 ? percent(value) : decimal(value, 2),
  }
}

/** The three factors that moved the prediction most, biggest first. */
function factorsOf(p: Prediction): Factor[] {
  const details = p.details as { factors?: Factor[] } | null
  return [...(details?.factors ?? [])]
    .filter((f) => f.text)
    .sort((a, b) => Math.abs(b.effect ?? 0) - Math.abs(a.effect ?? 0))
    .slice(0, 3)
}
