import { expect, test, type Page } from '@playwright/test'
import { apiGet, expectFitsPhone, PHONE, shot, signIn } from './helpers'

// The segment page (numbers, charts, insights, members) and the customer screens (list
// and profile), checked against what the API answers for the same things.

type Segment = { id: number; name: string; kind: string; customers: number }
type Row = Record<string, any>

const money = (n: number) =>
  n.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })
const percent = (share: number) =>
  `${(share * 100).toLocaleString('en-US', { maximumFractionDigits: 1 })}%`

/** Signed in, the workspace's id and an RFM segment with more than a page of members. */
async function openSegment(page: Page, tab = ''): Promise<{ ws: number; segment: Segment }> {
  const ws = await signIn(page)
  const { items } = await apiGet<{ items: Segment[] }>(page, `/workspaces/${ws}/segments?limit=500`)
  const segment = items.find((s) => s.kind === 'rfm' && s.customers > 25)!
  expect(segment, 'an RFM segment with more than one page of members').toBeTruthy()
  await page.goto(`/w/${ws}/segments/${segment.id}${tab}`)
  await expect(page.getByRole('heading', { name: segment.name })).toBeVisible()
  return { ws, segment }
}

/** A card by its title, or a key-number card by its number's title. */
function card(page: Page, title: string) {
  const heading = page
    .locator('.ant-card-head-title, .ant-statistic-title')
    .getByText(title, { exact: true })
  return page.locator('.ant-card').filter({ has: heading })
}

test('the segment page shows the numbers the analyses give, and what to do', async ({ page }) => {
  const { ws, segment } = await openSegment(page)
  const revenue = await apiGet(page, `/workspaces/${ws}/analyses/revenue?segments=${segment.id}`)
  const mine: Row = revenue.tables.revenue.rows.find((r: Row) => r.segment === segment.name)
  const compare = await apiGet(page, `/workspaces/${ws}/analyses/compare?segments=${segment.id}`)
  const kpis: Row = compare.tables.kpis.rows.find((r: Row) => r.segment === segment.name)

  await expect(card(page, 'Members')).toContainText(mine.customers.toLocaleString('en-US'))
  expect(mine.customers).toBe(segment.customers)
  await expect(card(page, 'Members')).toContainText(percent(mine.share_of_customers))
  await expect(card(page, 'Revenue')).toContainText(money(mine.revenue))
  await expect(card(page, 'Revenue')).toContainText(percent(mine.share_of_revenue))
  await expect(card(page, 'Average order value')).toContainText(money(mine.average_order_value))
  await expect(card(page, 'Days since last order')).toContainText(
    kpis.average_days_since_last_order.toLocaleString('en-US', { maximumFractionDigits: 1 }),
  )

  const history = await apiGet<Row[]>(page, `/workspaces/${ws}/segments/${segment.id}/history`)
  expect(history.length).toBeGreaterThan(0)
  await expect(card(page, 'Size over time').getByRole('application')).toBeVisible()
  await expect(card(page, 'Revenue contribution')).toContainText(money(mine.revenue))

  const insights = await apiGet(page, `/workspaces/${ws}/analyses/insights?segment=${segment.id}`)
  const advice: Row = insights.tables.insights.rows.find((r: Row) => r.type === 'recommendation')
  await expect(page.getByRole('alert').filter({ hasText: 'Recommended action' })).toContainText(
    advice.text,
  )
  await shot(page, 'segment-detail')

  await page.getByRole('tab', { name: 'Audience' }).click()
  await expect(page).toHaveURL(/tab=audience/)
  const byCountry = await apiGet(
    page,
    `/workspaces/${ws}/analyses/breakdown?segment=${segment.id}&attribute=country&limit=10`,
  )
  const top: Row = byCountry.tables.breakdown.rows[0]
  await expect(card(page, 'By country')).toContainText(String(top.value))
  await shot(page, 'segment-detail-audience')

  // A bar drills down to the members behind it.
  await card(page, 'By country').locator('.recharts-bar-rectangle').first().click()
  await expect(page).toHaveURL(/tab=members&attribute=country&value=/)
  await expect(page.getByLabel('Filter')).toContainText(`country = ${top.value}`)
  const behind = await apiGet(
    page,
    `/workspaces/${ws}/customers?segment=${segment.id}&attribute=country&value=${top.value}`,
  )
  expect(behind.total).toBe(top.segment_customers)
  await expect(page.getByText(`${behind.total.toLocaleString('en-US')} customers`)).toBeVisible()
  await expect(page.locator('.ant-table-row').first()).toContainText(behind.items[0].external_id)
  await page.getByLabel('Filter').getByRole('button', { name: 'Close' }).click()
  await expect(page.getByText(`${segment.customers.toLocaleString('en-US')} customers`)).toBeVisible()
  await page.getByRole('tab', { name: 'Audience' }).click()

  await page.getByRole('tab', { name: 'Behaviour' }).click()
  const gaps = await apiGet(page, `/workspaces/${ws}/analyses/order-gaps?segment=${segment.id}`)
  const median = gaps.tables.summary.rows.find((r: Row) => r.scope === 'segment').median
  await expect(card(page, 'Days between orders')).toContainText(
    `Median ${median.toLocaleString('en-US', { maximumFractionDigits: 1 })} days`,
  )
  await expect(card(page, 'Event mix')).toContainText('order')
  await shot(page, 'segment-detail-behaviour')

  await page.getByRole('tab', { name: 'Overview' }).click()
  await page.getByRole('button', { name: 'Act on it' }).first().click()
  await expect(page).toHaveURL(new RegExp(`/w/${ws}/actions/campaigns\\?segment=${segment.id}$`))
  // The new campaign starts with the segment acted on.
  const chosen = page.locator('.ant-form-item', { has: page.getByLabel('Segment', { exact: true }) })
  await expect(chosen).toContainText(segment.name)
})

test('members can be searched, sorted, downloaded and explained', async ({ page }) => {
  const { ws, segment } = await openSegment(page, '?tab=members')
  const base = `/workspaces/${ws}/customers?segment=${segment.id}`
  const all = await apiGet(page, `${base}&limit=500`)
  expect(all.total).toBe(segment.customers)
  const total = `${segment.customers.toLocaleString('en-US')} customers`
  await expect(page.getByText(total)).toBeVisible()
  await expect(page.locator('.ant-table-row')).toHaveCount(25)

  // Someone beyond the first page, found by name.
  const wanted: Row = all.items[30]
  await page.getByLabel('Search members').fill(wanted.name)
  await page.getByLabel('Search members').press('Enter')
  await expect(page.locator('.ant-table-row', { hasText: wanted.external_id })).toBeVisible()
  const found = await apiGet(page, `${base}&q=${encodeURIComponent(wanted.name)}`)
  await expect(page.locator('.ant-table-row')).toHaveCount(Math.min(found.total, 25))
  await page.getByLabel('Search members').fill('')
  await page.getByLabel('Search members').press('Enter')

  // The server orders them: the first rows are the API's, both ways.
  const firstBy = async (order: string) =>
    (await apiGet(page, `${base}&sort=name&order=${order}&limit=25`)).items[0].external_id
  await page.getByRole('columnheader', { name: 'Name' }).click()
  await expect(page.locator('.ant-table-row').first()).toContainText(await firstBy('asc'))
  await page.getByRole('columnheader', { name: 'Name' }).click()
  const last = await firstBy('desc')
  await expect(page.locator('.ant-table-row').first()).toContainText(last)
  expect(last).not.toBe(await firstBy('asc'))

  const href = await page.getByRole('link', { name: 'Download CSV' }).getAttribute('href')
  const csv = await page.request.get(href!)
  expect(csv.headers()['content-type']).toContain('text/csv')
  const lines = (await csv.text()).trim().split('\n')
  expect(lines[0]).toContain('external_id')
  expect(lines.length).toBe(segment.customers + 1)

  const row = page.locator('.ant-table-row').first()
  await row.getByRole('button', { name: 'Why here?' }).click()
  const why = await apiGet(page, `/workspaces/${ws}/segments/${segment.id}/explain/${last}`)
  expect(why.member).toBe(true)
  // Each condition marked as the API marks it (✓ or ✗: a member's data may have moved
  // since the segment was last evaluated).
  for (const line of why.text.split('\n').filter(Boolean).slice(0, 4))
    await expect(page.getByLabel('Explanation')).toContainText(line.trim())
  await expect(page.getByLabel('Explanation')).toContainText(/[✓✗]/)
  await expect(page.getByRole('dialog')).toContainText('member now')
  await page.keyboard.press('Escape')
  await shot(page, 'segment-detail-members')
})

test('a member opens their profile: attributes, segments, predictions and timeline', async ({
  page,
}) => {
  const { ws, segment } = await openSegment(page, '?tab=members')
  const first = page.locator('.ant-table-row').first().getByRole('link')
  const id = (await first.textContent())!
  await first.click()
  await expect(page).toHaveURL(new RegExp(`/w/${ws}/customers/${id}$`))

  const profile = await apiGet(page, `/workspaces/${ws}/customers/${id}?timeline=0`)
  const attributes = page.getByLabel('Attributes')
  await expect(page.getByRole('heading', { name: profile.customer.name })).toBeVisible()
  await expect(attributes).toContainText(profile.customer.email)
  await expect(attributes).toContainText(profile.customer.country)
  await expect(card(page, 'Net revenue')).toContainText(money(profile.net_revenue))
  await expect(card(page, 'Orders')).toContainText(String(profile.orders))

  const history = await apiGet(page, `/workspaces/${ws}/customers/${id}/segments`)
  const segments = page.getByLabel('Segments')
  await expect(segments.getByRole('listitem')).toHaveCount(history.segments.length)
  for (const stint of history.segments) await expect(segments).toContainText(stint.segment)
  await expect(segments.getByRole('link', { name: segment.name })).toBeVisible()

  const { predictions } = await apiGet(page, `/workspaces/${ws}/customers/${id}/predictions`)
  expect(predictions.length).toBeGreaterThan(0)
  const shown = page.getByLabel('Predictions', { exact: true })
  await expect(shown.locator('.ant-statistic')).toHaveCount(predictions.length)
  const churn: Row | undefined = predictions.find((p: Row) => p.prediction_type === 'churn_risk')
  if (churn) {
    await expect(shown).toContainText(percent(churn.value))
    const factors = [...churn.details.factors].sort(
      (a: Row, b: Row) => Math.abs(b.effect) - Math.abs(a.effect),
    )
    await expect(page.getByLabel('Why: Churn risk')).toContainText(factors[0].text)
  }
  const clv: Row | undefined = predictions.find((p: Row) => p.prediction_type === 'clv')
  if (clv) await expect(shown).toContainText(money(clv.value))

  const events = await apiGet(page, `/workspaces/${ws}/customers/${id}/events?limit=1`)
  const newest: Row = events.items[0]
  const timeline = page.getByLabel('Timeline')
  await expect(timeline.locator('.ant-timeline-item').first()).toContainText(newest.event_type)
  await expect(page.getByText(`${events.total.toLocaleString('en-US')} events`)).toBeVisible()
  await shot(page, 'customer-profile')

  await page.getByLabel('Event type').click()
  await page.locator('.ant-select-item-option[title="order"]').click()
  const orders = await apiGet(page, `/workspaces/${ws}/customers/${id}/events?event_type=order`)
  await expect(page.getByText(`${orders.total.toLocaleString('en-US')} events`)).toBeVisible()
})

test('the customers list searches and pages through everyone', async ({ page }) => {
  const ws = await signIn(page)
  await page.getByRole('menuitem', { name: 'Customers' }).first().click()
  await expect(page).toHaveURL(new RegExp(`/w/${ws}/customers$`))
  const everyone = await apiGet(page, `/workspaces/${ws}/customers?limit=25`)
  await expect(page.getByText(`${everyone.total.toLocaleString('en-US')} customers`)).toBeVisible()
  await expect(page.locator('.ant-table-row').first()).toContainText(everyone.items[0].external_id)
  await shot(page, 'customers')

  const second = await apiGet(page, `/workspaces/${ws}/customers?limit=25&offset=25`)
  await page.getByRole('listitem', { name: '2' }).click()
  await expect(page.locator('.ant-table-row').first()).toContainText(second.items[0].external_id)

  const someone: Row = second.items[3]
  const surname = someone.name.split(' ').slice(-1)[0]
  await page.getByLabel('Search customers').fill(surname)
  await page.getByLabel('Search customers').press('Enter')
  const found = await apiGet(page, `/workspaces/${ws}/customers?q=${surname}`)
  await expect(page.getByText(`${found.total.toLocaleString('en-US')} customers`)).toBeVisible()
  await page.getByRole('link', { name: someone.external_id }).click()
  await expect(page.getByRole('heading', { name: someone.name })).toBeVisible()

  await page.goto(`/w/${ws}/customers/nobody-here`)
  await expect(page.getByRole('alert')).toContainText("no customer 'nobody-here'")
})

test('segment and customer pages fit a phone', async ({ page }) => {
  const { ws } = await openSegment(page)
  await page.setViewportSize(PHONE)
  await expect(card(page, 'Revenue contribution').getByRole('application')).toBeVisible()
  await expect(card(page, 'Average order value')).toBeVisible()
  await expect(page.getByRole('button', { name: 'Act on it' })).toBeVisible()
  await expectFitsPhone(page)
  await shot(page, 'segment-detail-phone')
  await page.getByRole('tab', { name: 'Members' }).click()
  await expect(page.locator('.ant-table-row')).toHaveCount(25)
  await expectFitsPhone(page)

  const { items } = await apiGet(page, `/workspaces/${ws}/customers?limit=1`)
  await page.goto(`/w/${ws}/customers/${items[0].external_id}`)
  await expect(page.getByLabel('Timeline').locator('.ant-timeline-item').first()).toBeVisible()
  await expectFitsPhone(page)
  await shot(page, 'customer-profile-phone')
})
