/** The API writes UTC instants without a zone; read them as UTC, show them in local time. */
export function when(t: string | null | undefined, empty = '–'): string {
  if (!t) return empty
  const iso = /[zZ]|[+-]\d\d:\d\d$/.test(t) ? t : `${t}Z`
  return new Date(iso).toLocaleString('en-US', { dateStyle: 'medium', timeStyle: 'short' })
}

/** The same with seconds, for logs where several things happen in one minute. */
export function instant(t: string | null | undefined, empty = '–'): string {
  if (!t) return empty
  const iso = /[zZ]|[+-]\d\d:\d\d$/.test(t) ? t : `${t}Z`
  return new Date(iso).toLocaleString('en-US', { dateStyle: 'medium', timeStyle: 'medium' })
}

export const count = (n: number) => n.toLocaleString('en-US')

/** A rate (0.1234) as a percentage with two decimals ("12.34%"). */
export function percent(rate: number | null | undefined, signed = false): string {
  if (rate == null) return '–'
  const text = `${(rate * 100).toFixed(2)}%`
  return signed && rate > 0 ? `+${text}` : text
}

/** A difference of two rates in percentage points ("+2.94 pts"). */
export function points(diff: number | null | undefined): string {
  if (diff == null) return '–'
  return `${diff > 0 ? '+' : ''}${(diff * 100).toFixed(2)} pts`
}
