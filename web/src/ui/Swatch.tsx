import { segmentColor } from './colors'

/** A round swatch of a segment's colour, the same as its bars and boxes; grey for a
 * segment that is gone. `gap` is the room kept after it, when it is inline with text. */
export function Swatch({ id, size = 10, gap = 0 }: { id: number | undefined; size?: number; gap?: number }) {
  const color = id === undefined ? '#d9d9d9' : segmentColor(id)
  return (
    <span
      aria-hidden
      className="segment-swatch"
      data-color={color}
      style={{
        display: 'inline-block',
        width: size,
        height: size,
        borderRadius: size / 2,
        background: color,
        marginRight: gap,
        flex: 'none',
      }}
    />
  )
}
