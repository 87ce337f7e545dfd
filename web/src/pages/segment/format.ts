// How the segment and customer screens write numbers and times: en-US, money with two
// decimals. The API's times are UTC without a zone mark, dates are plain days.

const en = 'en-US'

export function count(n: number): string {
  return n.toLocaleString(en)
}

export function money(n: number): string {
  return n.toLocaleString(en, { minimumFractionDigits: 2, maximumFractionDigits: 2 })
}

export function decimal(n: number, digits = 1): string {
  return n.toLocaleString(en, { maximumFractionDigits: digits })
}

export function percent(share: number, digits = 1): string {
  return `${(share * 100).toLocaleString(en, { maximumFractionDigits: digits })}%`
}

/** A UTC time from the API (`2026-12-06 05:59:49.2`), in the reader's zone. */
export function when(text: string): string {
  const zoned = /[zZ+]|-\d\d:\d\d$/.test(text.slice(10))
  const time = new Date(text.replace(' ', 'T') + (zoned ? '' : 'Z'))
  return time.toLocaleString(en, { dateStyle: 'medium', timeStyle: 'short' })
}

/** A plain day (`2024-12-07`), or the day of a time, without shifting it by a zone. */
export function day(text: string): string {
  const time = new Date(`${text.slice(0, 10)}T00:00:00Z`)
  return time.toLocaleDateString(en, { dateStyle: 'medium', timeZone: 'UTC' })
}
