import type { components } from '../../api/schema'
import { count } from '../../ui/format'

export type Automation = components['schemas']['AutomationPublic']

/** A wait in seconds as people say it: "3 days", "2 hours", "none". */
export function waitText(seconds: number): string {
  if (seconds === 0) return 'at once'
  for (const [unit, size] of [['day', 86400], ['hour', 3600], ['minute', 60]] as const) {
    if (seconds % size === 0) {
      const n = seconds / size
      return `after ${n} ${unit}${n === 1 ? '' : 's'}`
    }
  }
  return `after ${seconds} seconds`
}

/** When it acts, in words: "enters, after 1 hour", "every 60 minutes". */
export function triggerText(a: Automation): string {
  if (a.trigger === 'schedule') return `every ${count(a.every_minutes ?? 0)} minutes`
  return `${a.trigger === 'enter' ? 'enters' : 'leaves'}, ${waitText(a.wait_seconds)}`
}
