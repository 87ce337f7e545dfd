import { Descriptions } from 'antd'
import { day, decimal, when } from '../../ui/format'

/** Bookkeeping columns, shown in the header or not at all. */
const HIDDEN = new Set(['customer_id', 'created_at', 'updated_at'])

/** Every attribute of the customer as the API gives it: personal values arrive already
 * masked for roles that may not see them. */
export function Attributes({ customer }: { customer: Record<string, unknown> }) {
  const items = Object.entries(customer)
    .filter(([key]) => !HIDDEN.has(key))
    .map(([key, value]) => ({
      key,
      label: key.replace(/_/g, ' '),
      children: <span style={{ wordBreak: 'break-word' }}>{show(key, value)}</span>,
    }))
  return <Descriptions size="small" column={1} bordered items={items} aria-label="Attributes" />
}

function show(key: string, value: unknown): string {
  if (value == null || value === '') return '–'
  if (typeof value === 'number') return decimal(value, 3)
  const text = String(value)
  if (/^\d{4}-\d\d-\d\d$/.test(text)) return day(text)
  if (/^\d{4}-\d\d-\d\d[ T]\d\d:\d\d/.test(text) && key !== 'external_id') return when(text)
  return text
}
