import type { useDestinations } from './hooks'

/** The export formats (docs/exports.md), for export files and export actions alike. */
export const FORMATS = [
  { value: 'csv', label: 'CSV: every attribute, for spreadsheets' },
  { value: 'mailchimp', label: 'Mailchimp audience import' },
  { value: 'klaviyo', label: 'Klaviyo list upload' },
  { value: 'hubspot', label: 'HubSpot contacts import' },
  { value: 'google', label: 'Google Customer Match (plain)' },
  { value: 'google_hashed', label: 'Google Customer Match (SHA-256)' },
  { value: 'meta', label: 'Meta Custom Audiences (SHA-256)' },
] as const

/** What the action fields hold while the form is being filled. */
export type ActionValues = {
  kind: string
  destination?: number
  subject?: string
  text?: string
  format?: string
  tag?: string
  attribute?: string
  value?: string
  segment?: string
}

/** A typed value from what was typed: true/false and numbers are stored as such, since an
 * attribute's column has a type and a number typed as text would not fit it. */
function typed(text: string): string | number | boolean {
  const t = text.trim()
  if (t === 'true' || t === 'false') return t === 'true'
  if (t !== '' && !Number.isNaN(Number(t))) return Number(t)
  return text
}

/** The action as the API takes it ({"kind": …, and its settings}). */
export function actionBody(v: ActionValues): Record<string, unknown> {
  switch (v.kind) {
    case 'webhook':
      return { kind: 'webhook', destination: v.destination }
    case 'email':
      return { kind: 'email', destination: v.destination, template: { subject: v.subject, text: v.text } }
    case 'export':
      return { kind: 'export', format: v.format ?? 'csv' }
    case 'tag':
      return { kind: 'tag', tag: v.tag }
    case 'set_attribute':
      return { kind: 'set_attribute', attribute: v.attribute, value: typed(v.value ?? '') }
    default:
      return { kind: 'add_to_segment', segment: v.segment }
  }
}

/** An action in words, for the lists: "webhook to CRM", "tag vip"… */
export function actionText(
  action: Record<string, unknown>,
  destinations: ReturnType<typeof useDestinations>,
): string {
  const via = (list: { id: number; name: string }[]) =>
    list.find((d) => d.id === action.destination)?.name ?? `#${String(action.destination)}`
  switch (action.kind) {
    case 'webhook':
      return `webhook to ${via(destinations.webhooks)}`
    case 'email': {
      const subject = (action.template as { subject?: string } | undefined)?.subject
      return `e-mail via ${via(destinations.servers)}${subject ? `: “${subject}”` : ''}`
    }
    case 'export':
      return `export as ${String(action.format)}`
    case 'tag':
      return `tag ${String(action.tag)}`
    case 'set_attribute':
      return `set ${String(action.attribute)} = ${JSON.stringify(action.value)}`
    case 'add_to_segment':
      return `add to ${String(action.segment)}`
    default:
      return String(action.kind)
  }
}
