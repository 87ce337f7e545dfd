import { expect, test, type Locator, type Page } from '@playwright/test'
import { PHONE, apiGet, expectFitsPhone, shot, signIn } from './helpers'

type Row = Record<string, any>

// The machine is shared: analyses over the demo's 2,000 customers can take a while.
test.describe.configure({ timeout: 180_000 })

// antd and ECharts say on the console when a component is used in a deprecated or wrong
// way: the screen must not give them cause.
let warnings: string[] = []
test.beforeEach(({ page }) => {
  warnings = []
  page.on('console', (m) => {
    if (m.type() === 'warning' || m.type() === 'error') warnings.push(m.text())
  })
})
test.afterEach(() => {
  expect(warnings.filter((w) => /antd|echarts/i.test(w))).toEqual([])
})
const n = (value: number) => value.toLocaleString('en-US')

/** The drawer of a drill-down: its title, and the customer count it says it lists. */
function drawer(page: Page) {
  const panel = page.getByRole('dialog')
  return {
    panel,
    title: panel.locator('.ant-drawer-title'),
    count: panel.getByLabel('Customers in this cell'),
    rows: panel.locator('.ant-table-row'),
  }
}

async function closeDrawer(page: Page) {
  await page.keyboard.press('Escape')
  await expect(page.getByRole('dialog')).toBeHidden()
}

/** A chart drawn as SVG, found by its accessible name. */
async function chart(page: Page, name: string): Promise<Locator> {
  const box = page.getByRole('img', { name })
  await expect(box.locator('svg')).toBeVisible()
  return box
}

async function segmentIds(page: Page, ws: number, names: string[]): Promise<number[]> {
  const { items } = await apiGet(page, `/workspaces/${ws}/segments?limit=500`)
  return names.map((name) => items.find((s: Row) => s.name === name).id)
}

test('overlap: the heatmap and UpSet show the API numbers, and cells open their customers', async ({
  page,
}) => {
  const ws = await signIn(page)
  await page.goto(`/w/${ws}/analyses`)
  await expect(page).toHaveURL(/\/analyses\/overlap$/)
  await expect(page.getByRole('tab', { name: 'Overlap', selected: true })).toBeVisible()

  const names = ['VIPs', 'Champions', 'Web-first buyers', 'Churn risk: low']
  const ids = await segmentIds(page, ws, names)
  await page.goto(`/w/${ws}/analyses/overlap?segments=${ids.join(',')}`)
  const query = names.map((s) => `segments=${encodeURIComponent(s)}`).join('&')
  const { tables } = await apiGet(page, `/workspaces/${ws}/analyses/overlap?${query}`)

  const heatmap = await chart(page, 'Pairwise overlap heatmap')
  const pair = tables.matrix.rows.find(
    (r: Row) => r.segment_a === 'VIPs' && r.segment_b === 'Champions',
  )
  expect(pair.both).toBeGreaterThan(0)
  for (const name of names) await expect(heatmap.getByText(name).first()).toBeVisible()
  const upset = await chart(page, 'UpSet plot of exact combinations')
  const top = tables.intersections.rows[0]
  await expect(upset.getByText(n(top.customers), { exact: true })).toBeVisible()
  await shot(page, 'analyses-overlap')

  // The VIPs × Champions cell: its count, and the customers behind it.
  await heatmap.getByText(n(pair.both), { exact: true }).first().click()
  const d = drawer(page)
  await expect(d.title).toHaveText('VIPs & Champions')
  await expect(d.count).toHaveText(`${n(pair.both)} customers`)
  const behind = await apiGet(
    page,
    `/workspaces/${ws}/analyses/overlap/customers?segments=VIPs&segments=Champions&limit=25`,
  )
  expect(behind.total).toBe(pair.both)
  await expect(d.rows.first()).toContainText(behind.items[0].external_id)
  // Each customer links to their profile.
  await expect(d.rows.first().getByRole('link')).toHaveAttribute(
    'href',
    `/w/${ws}/customers/${behind.items[0].external_id}`,
  )
  // Page by page, in the API's order.
  expect(pair.both).toBeGreaterThan(25)
  const second = await apiGet(
    page,
    `/workspaces/${ws}/analyses/overlap/customers?segments=VIPs&segments=Champions&limit=25&offset=25`,
  )
  await d.panel.getByRole('listitem', { name: '2' }).click()
  await expect(d.rows.first()).toContainText(second.items[0].external_id)
  await closeDrawer(page)

  // The largest UpSet bar: customers in exactly that combination.
  await upset.getByText(n(top.customers), { exact: true }).click()
  await expect(d.title).toHaveText(top.combination)
  await expect(d.count).toHaveText(`${n(top.customers)} customers`)
  await closeDrawer(page)
})

test('overlap asks for two segments in plain words', async ({ page }) => {
  const ws = await signIn(page)
  const [vips] = await segmentIds(page, ws, ['VIPs'])
  await page.goto(`/w/${ws}/analyses/overlap?segments=${vips}`)
  await expect(
    page.getByText('Choose at least two segments to see how they overlap.'),
  ).toBeVisible()
})

test('RFM: the grid and the migration show the API numbers, and cells open their customers', async ({
  page,
}) => {
  const ws = await signIn(page)
  await page.goto(`/w/${ws}/analyses/rfm`)
  const grid = await apiGet(page, `/workspaces/${ws}/analyses/rfm-grid`)
  const cell = [...grid.cells].sort((a: Row, b: Row) => b.customers - a.customers)[0]
  const heatmap = await chart(page, 'RFM grid heatmap')
  await expect(page.getByText(`${n(grid.customers)} customers with orders`)).toBeVisible()
  await heatmap.getByText(n(cell.customers), { exact: true }).click()
  const d = drawer(page)
  await expect(d.title).toContainText(`Recency ${cell.recency} · Frequency ${cell.score}`)
  await expect(d.count).toHaveText(`${n(cell.customers)} customers`)
  const behind = await apiGet(
    page,
    `/workspaces/${ws}/analyses/rfm-grid/customers?recency=${cell.recency}&score=${cell.score}`,
  )
  expect(behind.total).toBe(cell.customers)
  await closeDrawer(page)

  // The FM grid is the segment map: its cells are named after the RFM segments.
  await page.getByText('Recency × FM (segments)').click()
  const fm = await apiGet(page, `/workspaces/${ws}/analyses/rfm-grid?axis=fm`)
  const champions = fm.cells.filter((c: Row) => c.segment === 'Champions')
  expect(champions.length).toBeGreaterThan(0)
  await expect(heatmap.getByText('Champions', { exact: true })).toHaveCount(champions.length)

  // Migration from the first RFM scoring to today.
  const matrix = await chart(page, 'RFM migration matrix')
  const from = await page.getByLabel('From', { exact: true }).inputValue()
  const to = await page.getByLabel('To', { exact: true }).inputValue()
  const { tables } = await apiGet(
    page,
    `/workspaces/${ws}/analyses/rfm-migration?from_date=${from}&to_date=${to}`,
  )
  const move = [...tables.migration.rows].sort((a: Row, b: Row) => b.customers - a.customers)[0]
  await expect(matrix.getByText(n(move.customers), { exact: true })).toBeVisible()
  await shot(page, 'analyses-rfm')
  await matrix.getByText(n(move.customers), { exact: true }).click()
  await expect(d.count).toHaveText(`${n(move.customers)} customers`)
  const moved = await apiGet(
    page,
    `/workspaces/${ws}/analyses/rfm-migration/customers?from_date=${from}&to_date=${to}` +
      `&from_segment=${encodeURIComponent(move.from_segment)}&to_segment=${encodeURIComponent(move.to_segment)}`,
  )
  expect(moved.total).toBe(move.customers)
})

test('cohorts: the retention heatmap shows the API shares, and a cell opens its customers', async ({
  page,
}) => {
  const ws = await signIn(page)
  await page.goto(`/w/${ws}/analyses/cohorts`)
  await page.getByText('Quarterly').click()
  const { tables } = await apiGet(page, `/workspaces/${ws}/analyses/cohorts?period=quarter`)
  const heatmap = await chart(page, 'Cohort retention heatmap')
  // A later-period cell whose label is unique on the chart, so the click is unambiguous.
  const label = (r: Row) => `${Math.round(r.retention * 100)}%`
  const rows: Row[] = tables.cohorts.rows
  const cell = rows.find(
    (r) => r.period_offset > 0 && rows.filter((o) => label(o) === label(r)).length === 1,
  )!
  expect(cell, 'a cell with a label of its own').toBeTruthy()
  await expect(heatmap.getByText(label(cell), { exact: true })).toBeVisible()
  await shot(page, 'analyses-cohorts')
  await heatmap.getByText(label(cell), { exact: true }).click()
  const d = drawer(page)
  await expect(d.title).toContainText(`quarter ${cell.period_offset}`)
  await expect(d.count).toHaveText(`${n(cell.customers)} customers`)
  const behind = await apiGet(
    page,
    `/workspaces/${ws}/analyses/cohorts/customers?period=quarter&cohort=${cell.cohort}&period_offset=${cell.period_offset}`,
  )
  expect(behind.total).toBe(cell.customers)
})

test('journeys: the Sankey shows the API steps, and a link opens its customers', async ({
  page,
}) => {
  const ws = await signIn(page)
  await page.goto(`/w/${ws}/analyses/journeys`)
  const { tables } = await apiGet(page, `/workspaces/${ws}/analyses/journeys?steps=4&limit=10`)
  const sankey = await chart(page, 'Journey Sankey')
  const node = tables.nodes.rows[0]
  await expect(sankey.getByText(`${node.event_type} ${n(node.customers)}`).first()).toBeVisible()
  await expect(page.locator('.ant-table-row').first()).toContainText(tables.paths.rows[0].path)
  await shot(page, 'analyses-journeys')

  // Click inside the widest band: halfway between the middle of its upper edge and the
  // middle of its lower edge (a band's outline runs along one, then back along the other;
  // the centre of its box can miss a curved band). Whichever link it is, the drawer must
  // count that link's customers.
  const box = await sankey.evaluate((el) => {
    const bands = [...el.querySelectorAll('path')].filter(
      (p) => Number(p.getAttribute('fill-opacity') ?? p.getAttribute('opacity') ?? 1) < 0.5,
    )
    const area = (p: SVGPathElement) => {
      const r = p.getBoundingClientRect()
      return r.width * r.height
    }
    const widest = bands.sort((a, b) => area(b) - area(a))[0]
    if (!widest) return null
    const length = widest.getTotalLength()
    const screen = widest.getScreenCTM()!
    const [a, b] = [0.25, 0.75].map((at) =>
      widest.getPointAtLength(length * at).matrixTransform(screen),
    )
    return { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 }
  })
  expect(box, 'the Sankey has links').toBeTruthy()
  await page.mouse.click(box!.x, box!.y)
  const d = drawer(page)
  await expect(d.title).toContainText('→')
  const [source, target] = (await d.title.innerText()).split(' → ')
  const detail = await d.panel.getByText(/^Customers whose step/).innerText()
  const step = Number(detail.match(/step (-?\d+)/)![1])
  const link = tables.links.rows.find(
    (l: Row) => l.step === step && l.source_event === source && l.target_event === target,
  )
  await expect(d.count).toHaveText(`${n(link.customers)} customers`)
  const behind = await apiGet(
    page,
    `/workspaces/${ws}/analyses/journeys/customers?steps=4&step=${step}` +
      `&source_event=${source}&target_event=${target}`,
  )
  expect(behind.total).toBe(link.customers)
})

test('every analysis tab fits a phone', async ({ page }) => {
  const ws = await signIn(page)
  await page.setViewportSize(PHONE)
  const charts = {
    rfm: 'RFM grid heatmap',
    cohorts: 'Cohort retention heatmap',
    journeys: 'Journey Sankey',
    overlap: 'UpSet plot of exact combinations',
  }
  for (const [tab, name] of Object.entries(charts)) {
    await page.goto(`/w/${ws}/analyses/${tab}`)
    await chart(page, name)
    await expectFitsPhone(page)
  }
  await shot(page, 'analyses-phone')
})
