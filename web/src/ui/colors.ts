// One colour per segment across every chart: a segment's colour follows from its id,
// so the explorer, the analyses and the segment's own page draw it alike.
const PALETTE = [
  '#1677ff', '#fa8c16', '#52c41a', '#eb2f96', '#722ed1', '#13c2c2',
  '#faad14', '#f5222d', '#2f54eb', '#a0d911', '#8c8c8c', '#9254de',
  '#08979c', '#d4380d', '#389e0d', '#c41d7f',
]

export function segmentColor(segmentId: number): string {
  return PALETTE[((segmentId % PALETTE.length) + PALETTE.length) % PALETTE.length]
}

/** A colour for the i-th series of a chart that is not about segments. */
export function seriesColor(index: number): string {
  return PALETTE[index % PALETTE.length]
}
