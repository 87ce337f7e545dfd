import type { components } from '../../api/schema'

export type Webhook = components['schemas']['WebhookPublic']

/** What an endpoint can receive (docs/webhooks.md); none chosen means every type. */
export const EVENT_TYPES = [
  { value: 'segment.entered', label: 'segment.entered: a customer joined a segment' },
  { value: 'segment.exited', label: 'segment.exited: a customer left a segment' },
  { value: 'segment.scheduled', label: 'segment.scheduled: a scheduled run, per member' },
  { value: 'campaign.started', label: 'campaign.started: a campaign acted on a customer' },
  { value: 'webhook.test', label: 'webhook.test: a test sent from here' },
]

/** A secret the API shows once (on creation or rotation). */
export type ShownSecret = { name: string; secret: string; oldUntil?: string }
