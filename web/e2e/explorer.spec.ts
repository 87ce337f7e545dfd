import { expect, test, type Page } from '@playwright/test'
import { apiGet, expectFitsPhone, PHONE, shot, signIn } from './helpers'

type Segment = { id: number; name: string; kind: string; family: string | null; customers: number }
type Table = { columns: string[]; rows: Record<string, number | string | null>[] }
type TierSets = { items: { name: string; tiers: { name: string; max: number | null }[] }[] }

const money = (n: number) =>
  n.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })

/** A hex colour as the browser reports a computed CSS colour. */
const rgb = (hex: string) => {
  const n = parseInt(hex.slice(1), 16)
  return `rgb(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255})`
}

async function segments(page: Page, workspace: number): Promise<Segment[]> {
  const path = `/workspaces/${workspace}/segments?limit=500`
  return (await apiGet<{ items: Segment[] }>(page, path)).items
}

/** The demo's RFM segments with members, largest first. */
async function rfmSegments(page: Page, workspace: number): Promise<Segment[]> {
  return (await segments(page, workspace))
    .filter((s) => s.kind === 'rfm' && s.customers > 0)
    .sort((a, b) => b.customers - a.customers)
}

async function compare(page: Page, workspace: number, ids: number[]) {
  const query = ids.map((id) => `segments=${id}`).join('&')
  const path = `/workspaces/${workspace}/analyses/compare?metric=total_revenue&${query}`
  return (await apiGet<{ tables: Record<string, Table> }>(page, path)).tables
}

/** A segment's colour swatch in the quick switcher. */
const swatch = (page: Page, name: string) =>
  page.getByLabel('Focused segment').locator('label', { hasText: name }).locator('.segment-swatch')

/** One figure of the focused segment's metric cards. */
const stat = (page: Page, segment: Segment, title: string) =>
  page
    .getByRole('region', { name: `${segment.name} metrics` })
    .locator('.ant-statistic', { hasText: title })
    .locator('.ant-statistic-content')

test('segments chosen in the selector fill the switcher and the address; the switcher focuses one', async ({
  page,
}) => {
  const warnings: string[] = []
  page.on('console', (m) => {
    // The app has no favicon yet: the browser's own request for one is not the screen's.
    if (m.location().url.endsWith('/favicon.ico')) return
    if (m.type() === 'warning' || m.type() === 'error') warnings.push(m.text())
  })
  const workspace = await signIn(page)
  const [first, second] = await rfmSegments(page, workspace)
  await page.goto(`/w/${workspace}/explorer`)
  await expect(page.getByText('Choose segments to compare above')).toBeVisible()

  const selector = page.getByRole('combobox', { name: 'Segments to compare' })
  for (const segment of [first, second]) {
    await selector.click()
    await selector.fill(segment.name)
    await page.locator(`.ant-select-item-option[title="${segment.name}"]`).click()
  }
  await page.keyboard.press('Escape')
  await expect(page).toHaveURL(new RegExp(`segments=${first.id},${second.id}&focus=${first.id}`))
  const switcher = page.getByLabel('Focused segment')
  await expect(switcher.getByText(first.name, { exact: true })).toBeVisible()
  await expect(switcher.getByText(second.name, { exact: true })).toBeVisible()
  await expect(stat(page, first, 'Customers')).toHaveText(first.customers.toLocaleString('en-US'))

  await switcher.getByText(second.name, { exact: true }).click()
  await expect(page).toHaveURL(new RegExp(`focus=${second.id}`))
  const { kpis } = await compare(page, workspace, [first.id, second.id])
  const row = kpis.rows[2] // the whole base first, then the segments in the order asked
  expect(row.segment).toBe(second.name)
  const customers = Number(row.customers).toLocaleString('en-US')
  await expect(stat(page, second, 'Customers')).toHaveText(customers)
  await expect(stat(page, second, 'Revenue per customer')).toHaveText(
    money(Number(row.revenue_per_customer)),
  )
  await expect(stat(page, second, 'Average order value')).toHaveText(
    money(Number(row.average_order_value)),
  )
  await expect(page.getByLabel('Recommendations')).toContainText(second.name)

  // The address keeps the view: a reload opens the same comparison and focus.
  await page.reload()
  await expect(stat(page, second, 'Customers')).toHaveText(customers)
  await expect(switcher.getByText(first.name, { exact: true })).toBeVisible()
  await expect(page.locator('.ant-select .ant-tag', { hasText: first.name })).toBeVisible()
  // No deprecation warning from antd, no error from the charts.
  expect(warnings).toEqual([])
})

test('the summary equals the compare route; bars and boxes take each segment’s switcher colour', async ({
  page,
}) => {
  const workspace = await signIn(page)
  const chosen = (await rfmSegments(page, workspace)).slice(0, 4)
  const ids = chosen.map((s) => s.id)
  await page.goto(`/w/${workspace}/explorer?segments=${ids.join(',')}`)
  const { kpis, distribution } = await compare(page, workspace, ids)

  const summary = page.getByLabel('Segment summary')
  for (const row of kpis.rows) {
    const line = summary.locator('.ant-table-row', { hasText: String(row.segment) }).first()
    await expect(line).toContainText(Number(row.customers).toLocaleString('en-US'))
    await expect(line).toContainText(money(Number(row.total_revenue)))
    await expect(line).toContainText(money(Number(row.average_order_value)))
  }
  await expect(summary.locator('.ant-table-row')).toHaveCount(kpis.rows.length)

  const boxes = page.getByRole('img', { name: /Distribution of/ })
  await expect(boxes.locator('svg')).toBeVisible()
  expect(distribution.rows.length).toBe(chosen.length + 1)
  const bars = page.getByRole('img', { name: 'Customers by segment' })
  for (const segment of chosen) {
    const color = (await swatch(page, segment.name).getAttribute('data-color'))!
    const painted = await swatch(page, segment.name).evaluate(
      (el) => getComputedStyle(el).backgroundColor,
    )
    expect(painted).toBe(rgb(color))
    await expect(bars.locator(`path[fill="${color}"]`)).toHaveCount(1)
    // Each segment's box is outlined in the same colour.
    await expect(boxes.locator(`path[stroke="${color}"]`).first()).toBeAttached()
  }

  // Clicking a bar focuses its segment.
  const last = chosen[chosen.length - 1]
  const color = await swatch(page, last.name).getAttribute('data-color')
  await bars.locator(`path[fill="${color}"]`).click()
  await expect(page).toHaveURL(new RegExp(`focus=${last.id}`))
  await expect(page.getByRole('region', { name: `${last.name} metrics` })).toBeVisible()
  await expect(page.getByLabel('Recommendations')).toContainText(last.name)
  await page.mouse.move(0, 0) // no tooltip over the charts in the screenshot
  await shot(page, 'explorer')
})

test('a family button compares the whole family, and a metric that is no number is refused', async ({
  page,
}) => {
  const workspace = await signIn(page)
  const rfm = (await segments(page, workspace)).filter((s) => s.kind === 'rfm' && s.customers > 0)
  await page.goto(`/w/${workspace}/explorer?metric=country`)
  await page.getByRole('button', { name: `RFM (${rfm.length})` }).click()
  await expect(page).toHaveURL(new RegExp(`segments=${rfm.map((s) => s.id).join(',')}&`))

  await expect(page.getByRole('alert')).toContainText("metric 'country' is string, not a number")
  await page.getByRole('button', { name: 'Compare on revenue instead' }).click()
  await expect(page.getByRole('img', { name: /Distribution of Revenue/ })).toBeVisible()
  await expect(page.getByLabel('Segment summary').locator('.ant-table-row')).toHaveCount(
    rfm.length + 1,
  )
})

test('a tier threshold changed is saved, and reset puts the defaults back', async ({ page }) => {
  const workspace = await signIn(page)
  const midMarketMax = async () => {
    const { items } = await apiGet<TierSets>(page, `/workspaces/${workspace}/tiers`)
    return items.find((s) => s.name === 'size')!.tiers.find((t) => t.name === 'Mid-Market')!.max
  }
  await page.goto(`/w/${workspace}/explorer?tab=tiers`)
  await expect(page.getByText('No tier sets yet')).toBeVisible()
  await page.getByRole('button', { name: 'Create with the default tiers' }).click()
  const editor = page.locator('.ant-card', { hasText: 'Tier set “size”' })
  const maximum = editor.getByLabel('Mid-Market maximum')
  await expect(maximum).toHaveValue('10')
  expect(await midMarketMax()).toBe(10)

  await maximum.fill('50')
  await editor.getByRole('button', { name: 'Apply thresholds' }).click()
  await expect(editor.getByText(/Saved; customers per tier now/)).toBeVisible()
  expect(await midMarketMax()).toBe(50)
  await expect(editor.getByText('above 50', { exact: true })).toBeVisible()
  const large = (await segments(page, workspace)).find((s) => s.name === 'Large Enterprise')!
  const row = editor.getByRole('listitem').filter({ has: page.getByLabel('Tier 3 name') })
  await expect(row).toContainText(`${large.customers.toLocaleString('en-US')} customers`)
  await shot(page, 'explorer-tiers')

  await editor.getByRole('button', { name: 'Reset to defaults' }).click()
  await page.getByRole('button', { name: 'Reset', exact: true }).click()
  await expect(maximum).toHaveValue('10')
  expect(await midMarketMax()).toBe(10)

  // The tiers are segments: one click compares them.
  await editor.getByRole('button', { name: 'Compare these tiers' }).click()
  await expect(page).toHaveURL(/segments=\d+,\d+,\d+/)
  await expect(page.getByLabel('Focused segment').getByText('Mid-Market')).toBeVisible()
})

test('the explorer fits a phone', async ({ page }) => {
  const workspace = await signIn(page)
  const ids = (await rfmSegments(page, workspace)).slice(0, 3).map((s) => s.id)
  await page.setViewportSize(PHONE)
  await page.goto(`/w/${workspace}/explorer?segments=${ids.join(',')}`)
  await expect(page.getByRole('img', { name: /Distribution of/ }).locator('svg')).toBeVisible()
  await expect(page.getByLabel('Segment summary').locator('.ant-table-row')).toHaveCount(4)
  await expect(page.getByLabel('Recommendations')).toBeVisible()
  await expectFitsPhone(page)
  await shot(page, 'explorer-phone')

  await page.getByRole('tab', { name: 'Tier thresholds' }).click()
  await expect(page.getByLabel('Mid-Market maximum')).toBeVisible()
  await expectFitsPhone(page)
})
