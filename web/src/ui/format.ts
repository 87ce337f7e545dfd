// How every screen writes numbers and times: en-US, money with two decimals, and '–'
// where the API has no value. The API's times are UTC without a zone mark; dates are
// plain days.

const en = 'en-US'
/** What a missing value reads as. */
export const none = '–'

type Value = number | null | undefined

function digits(n: number, most: number, least = 0): string {
  return n.toLocaleString(en, { minimumFractionDigits: least, maximumFractionDigits: most })
}

export function count(n: Value): string {
  return n == null ? none : n.toLocaleString(en)
}

export function money(n: Value): string {
  return n == null ? none : digits(n, 2, 2)
}

/** Up to `places` decimals ("3", "3.5"); `fixed` always writes them all ("3.50"). */
export function decimal(n: Value, places = 1, fixed = false): string {
  return n == null ? none : digits(n, places, fixed ? places : 0)
}

/** A share (0.125) as a percentage ("12.5%"), with decimals as `decimal` writes them. */
export function percent(share: Value, places = 1, fixed = false): string {
  return share == null ? none : `${decimal(share * 100, places, fixed)}%`
}

/** A difference of two rates in percentage points ("+2.94 pts"). */
export function points(diff: Value): string {
  if (diff == null) return none
  return `${diff > 0 ? '+' : ''}${digits(diff * 100, 2, 2)} pts`
}

/** A value of any metric: whole numbers as counts, others with two decimals. */
export function figure(n: Value): string {
  return n == null ? none : Number.isInteger(n) ? count(n) : money(n)
}

/** Short axis labels: 12,500 → 12.5K. */
export function compact(n: number): string {
  return n.toLocaleString(en, { notation: 'compact', maximumFractionDigits: 1 })
}

/** A UTC time from the API (`2026-12-06 05:59:49.2`) as a Date. */
function instantOf(text: string): Date {
  const iso = text.replace(' ', 'T')
  // The date part has dashes too: only a zone mark after it counts.
  const zoned = /[zZ]|[+-]\d\d:\d\d$/.test(iso.slice(10))
  return new Date(zoned ? iso : `${iso}Z`)
}

/** A UTC time from the API, in the reader's zone: "Dec 6, 2026, 6:00 AM". */
export function when(text: string | null | undefined, empty = none): string {
  if (!text) return empty
  return instantOf(text).toLocaleString(en, { dateStyle: 'medium', timeStyle: 'short' })
}

/** The same with seconds, for logs where several things happen in one minute. */
export function instant(text: string | null | undefined, empty = none): string {
  if (!text) return empty
  return instantOf(text).toLocaleString(en, { dateStyle: 'medium', timeStyle: 'medium' })
}

/** A plain day (`2024-12-07`), or the day of a time, without shifting it by a zone:
 * "Dec 7, 2024". Text that is no date is shown as it is. */
export function day(text: string): string {
  const date = new Date(`${text.slice(0, 10)}T00:00:00Z`)
  return Number.isNaN(date.getTime())
    ? text
    : date.toLocaleDateString(en, { dateStyle: 'medium', timeZone: 'UTC' })
}

/** The month of a day: "Mar 2025". */
export function month(text: string): string {
  const date = new Date(`${text.slice(0, 10)}T00:00:00Z`)
  return date.toLocaleDateString(en, { month: 'short', year: 'numeric', timeZone: 'UTC' })
}
