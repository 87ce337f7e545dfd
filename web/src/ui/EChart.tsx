import { useEffect, useRef } from 'react'
import * as echarts from 'echarts/core'
import { BarChart, BoxplotChart, HeatmapChart, LineChart, SankeyChart } from 'echarts/charts'
import {
  GridComponent,
  LegendComponent,
  TooltipComponent,
  VisualMapComponent,
} from 'echarts/components'
import { SVGRenderer } from 'echarts/renderers'
import type { EChartsCoreOption } from 'echarts/core'

echarts.use([
  BarChart,
  BoxplotChart,
  HeatmapChart,
  LineChart,
  SankeyChart,
  GridComponent,
  LegendComponent,
  TooltipComponent,
  VisualMapComponent,
  SVGRenderer,
])

/** An ECharts chart (heatmaps, Sankey, box plots) with its animation off, so what it shows
 * is there at once. `onClick` gets the clicked item's params (for drilling down). */
export function EChart({
  option,
  height = 360,
  label,
  onClick,
}: {
  option: EChartsCoreOption
  height?: number
  label: string
  onClick?: (params: echarts.ECElementEvent) => void
}) {
  const el = useRef<HTMLDivElement>(null)
  const chart = useRef<echarts.ECharts | null>(null)
  // The chart is made once; a click reaches the latest handler through this ref.
  const click = useRef(onClick)
  useEffect(() => {
    click.current = onClick
  }, [onClick])

  useEffect(() => {
    const instance = echarts.init(el.current!, undefined, { renderer: 'svg' })
    chart.current = instance
    instance.on('click', (params) => click.current?.(params as echarts.ECElementEvent))
    const resize = new ResizeObserver(() => instance.resize())
    resize.observe(el.current!)
    return () => {
      resize.disconnect()
      instance.dispose()
    }
  }, [])
  useEffect(() => {
    chart.current?.setOption({ animation: false, ...option }, true)
  }, [option])
  return <div ref={el} role="img" aria-label={label} style={{ width: '100%', height }} />
}
