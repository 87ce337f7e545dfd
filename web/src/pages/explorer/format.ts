// Numbers as the explorer shows them: counts with separators, money with two decimals.
const en = (digits: number) =>
  new Intl.NumberFormat('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })

const money = en(2)
const one = en(1)

export const count = (n: number | null) => (n == null ? '–' : n.toLocaleString('en-US'))
export const amount = (n: number | null) => (n == null ? '–' : money.format(n))
export const twoPlaces = (n: number | null) => (n == null ? '–' : money.format(n))
export const decimal = (n: number | null) => (n == null ? '–' : one.format(n))
export const percent = (n: number | null) => (n == null ? '–' : `${one.format(n * 100)}%`)

/** A value of any metric: whole numbers as counts, others with up to two decimals. */
export const figure = (n: number | null) =>
  n == null ? '–' : Number.isInteger(n) ? count(n) : money.format(n)

/** Short axis labels: 12,500 → 12.5K. */
export const compact = (n: number) =>
  new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 }).format(n)
