import { expect, test, type Locator, type Page } from '@playwright/test'
import { PHONE, apiGet, expectFitsPhone, shot, signIn } from './helpers'

// The segment builder and the segments list. The builder's preview must show exactly
// what the API counts for the same definition, written out here independently of the
// app's own translation.

/** POST /segments/preview for a rule; its count. */
async function apiCount(page: Page, workspace: number, rule: object): Promise<number> {
  const answer = await page.request.post(`/api/v1/workspaces/${workspace}/segments/preview`, {
    data: { rule, sample: 0 },
  })
  expect(answer.ok(), await answer.text()).toBeTruthy()
  return (await answer.json()).count
}

/** Pick an option of an antd Select; a searchable one is typed into first, since its
 * list only renders the options in view. */
async function choose(select: Locator, option: string | RegExp, typed?: string) {
  await select.click()
  if (await select.isEditable()) await select.fill(typed ?? String(option))
  await options(select.page()).getByTitle(option, { exact: true }).click()
}

/** The open dropdown of an antd Select (its options carry their label as a title). */
function options(page: Page) {
  return page.locator('.ant-select-dropdown:not(.ant-select-dropdown-hidden)')
}

function matching(page: Page) {
  return page.getByLabel('Matching customers')
}

test('a segment built with a nested group previews, saves and lists the API’s numbers', async ({ page }) => {
  const workspace = await signIn(page)
  const customers = await apiGet(page, `/workspaces/${workspace}/customers?limit=500`)
  // The most common country: a condition that holds for many customers.
  const byCountry = new Map<string, number>()
  for (const c of customers.items) if (c.country) byCountry.set(c.country, (byCountry.get(c.country) ?? 0) + 1)
  const country = [...byCountry.entries()].sort((a, b) => b[1] - a[1])[0][0]

  await page.getByRole('button', { name: 'New segment' }).click()
  await expect(page).toHaveURL(new RegExp(`/w/${workspace}/segments/new$`))
  await expect(page.getByRole('heading', { name: 'New segment' })).toBeVisible()

  // Condition 1: total orders at least 2.
  const first = page.getByRole('group', { name: 'Condition 1', exact: true })
  await choose(first.getByLabel('Property', { exact: true }), 'total orders')
  await choose(first.getByLabel('Operator', { exact: true }), 'is at least')
  await first.getByLabel('Value', { exact: true }).fill('2')

  // Group 2: country is X OR an order in the last 90 days.
  await page.getByRole('button', { name: 'Add group to all conditions' }).click()
  const nested = page.getByRole('group', { name: 'Group 2', exact: true })
  await expect(nested.getByRole('radio', { name: 'any (OR)' })).toBeChecked()
  const byPlace = nested.getByRole('group', { name: 'Condition 2.1', exact: true })
  await choose(byPlace.getByLabel('Property', { exact: true }), 'country')
  await byPlace.getByLabel('Value', { exact: true }).fill(country)
  await nested.getByRole('button', { name: 'Add condition to group 2' }).click()
  const byEvent = nested.getByRole('group', { name: 'Condition 2.2', exact: true })
  await choose(byEvent.getByLabel('Condition type'), 'Event')
  await choose(byEvent.getByLabel('Event', { exact: true }), /^order \(/, 'order')
  await byEvent.getByLabel('Within the last days').fill('90')

  const definition = (days: number) => ({
    type: 'and',
    conditions: [
      { type: 'trait', trait: 'total_orders', op: 'gte', value: 2 },
      {
        type: 'or',
        conditions: [
          { type: 'attribute', attribute: 'country', op: 'eq', value: country },
          { type: 'performed', event: 'order', window: { last_days: days } },
        ],
      },
    ],
  })
  const expected = await apiCount(page, workspace, definition(90))
  expect(expected).toBeGreaterThan(0)
  await expect(matching(page)).toHaveText(expected.toLocaleString('en-US'))
  await expect(page.getByLabel('Share of all customers', { exact: true })).toContainText(
    `of ${customers.total.toLocaleString('en-US')} customers`,
  )

  // A narrower window: the count follows the API's new answer.
  const narrower = await apiCount(page, workspace, {
    ...definition(90),
    conditions: [
      { type: 'trait', trait: 'total_orders', op: 'gte', value: 3 },
      definition(90).conditions[1],
    ],
  })
  expect(narrower).not.toBe(expected)
  await first.getByLabel('Value', { exact: true }).fill('3')
  await expect(matching(page)).toHaveText(narrower.toLocaleString('en-US'))
  await shot(page, 'segment-builder')

  // What is left to fill in is said before anything is sent; what the API refuses is
  // shown in its words.
  await page.getByRole('button', { name: 'Add condition to all conditions' }).click()
  await expect(page.getByText('Finish the rule to see who matches')).toBeVisible()
  await expect(page.getByText('Condition 3: choose a property')).toBeVisible()
  await expect(page.getByRole('button', { name: 'Save segment' })).toBeDisabled()
  const third = page.getByRole('group', { name: 'Condition 3', exact: true })
  await choose(third.getByLabel('Condition type'), 'Random sample')
  await third.getByLabel('From percent').fill('50')
  await expect(page.getByText('This rule cannot be evaluated yet')).toBeVisible()
  await expect(page.getByRole('alert')).toContainText("'from' must be below 'to'")
  await page.getByRole('button', { name: 'Remove condition 3' }).click()
  await expect(matching(page)).toHaveText(narrower.toLocaleString('en-US'))

  const name = `Repeat buyers ${Date.now()}`
  await page.getByLabel('Name', { exact: true }).fill(name)
  await page.getByLabel('Description').fill('Three orders or more, local or recent.')
  await page.getByRole('button', { name: 'Save segment' }).click()
  await expect(page).toHaveURL(new RegExp(`/w/${workspace}/segments/\\d+$`))
  const listed = await apiGet(page, `/workspaces/${workspace}/segments?limit=500`)
  const saved = listed.items.find((s: { name: string }) => s.name === name)
  expect(saved, 'GET /segments has the new segment').toBeTruthy()
  expect(saved.customers).toBe(narrower)
  expect(saved.refreshed_at).not.toBeNull()
  expect(page.url()).toContain(`/segments/${saved.id}`)

  // The list shows it with its size, and every row has its sparkline.
  await page.goto(`/w/${workspace}/segments`)
  await page.getByLabel('Search segments').fill(name)
  const row = page.locator('.ant-table-row', { hasText: name })
  await expect(row).toContainText(narrower.toLocaleString('en-US'))
  await expect(row.locator('.sparkline svg path.recharts-curve')).toHaveCount(1)
  await expect(row.getByRole('img')).toHaveAttribute('aria-label', new RegExp(`to ${narrower.toLocaleString('en-US')} customers`))

  // Editing it loads its rule back into the builder, with the same count.
  await row.getByRole('link', { name: `Edit ${name}` }).click()
  await expect(page.getByRole('heading', { name: 'Edit segment' })).toBeVisible()
  await expect(page.getByLabel('Name', { exact: true })).toHaveValue(name)
  await expect(page.getByRole('group', { name: 'Condition 2.2', exact: true }).getByLabel('Within the last days')).toHaveValue('90')
  await expect(matching(page)).toHaveText(narrower.toLocaleString('en-US'))

  // A changed rule saved with PATCH: the segment is re-evaluated to the new count.
  const fourOrMore = {
    ...definition(90),
    conditions: [{ type: 'trait', trait: 'total_orders', op: 'gte', value: 4 }, definition(90).conditions[1]],
  }
  const changed = await apiCount(page, workspace, fourOrMore)
  await page.getByRole('group', { name: 'Condition 1', exact: true }).getByLabel('Value', { exact: true }).fill('4')
  await expect(matching(page)).toHaveText(changed.toLocaleString('en-US'))
  await page.getByRole('button', { name: 'Save changes' }).click()
  await expect(page).toHaveURL(new RegExp(`/segments/${saved.id}$`))
  const after = await apiGet(page, `/workspaces/${workspace}/segments/${saved.id}`)
  expect(after.customers).toBe(changed)
  expect(after.rule).toEqual(fourOrMore)
})

test('editing a stored rule loads each condition into its own form, with the same count', async ({ page }) => {
  const workspace = await signIn(page)
  const listed = await apiGet(page, `/workspaces/${workspace}/segments?limit=500`)
  const find = (name: string) => listed.items.find((s: { name: string }) => s.name === name)

  // Revenue of orders in a window, and "never did" an event.
  const bigSpenders = find('Big spenders at risk')
  await page.goto(`/w/${workspace}/segments/${bigSpenders.id}/edit`)
  const total = page.getByRole('group', { name: 'Condition 1', exact: true })
  await expect(total.getByLabel('Condition type')).toBeVisible()
  await expect(total).toContainText('Event revenue')
  await expect(total).toContainText('total revenue')
  await expect(page.getByRole('group', { name: 'Condition 2', exact: true })).toContainText('never did')
  await expect(matching(page)).toHaveText(
    (await apiCount(page, workspace, bigSpenders.rule)).toLocaleString('en-US'),
  )

  // Another segment's members and a random slice.
  const holdout = find('Champions holdout')
  await page.goto(`/w/${workspace}/segments/${holdout.id}/edit`)
  await expect(page.getByRole('group', { name: 'Condition 1', exact: true })).toContainText('Champions')
  await expect(page.getByLabel('To percent')).toHaveValue(String(holdout.rule.conditions[1].to))
  await expect(matching(page)).toHaveText(
    (await apiCount(page, workspace, holdout.rule)).toLocaleString('en-US'),
  )

  // Segments Strata makes itself are not edited here, and the page says so.
  const champions = find('Champions')
  await page.goto(`/w/${workspace}/segments/${champions.id}/edit`)
  await expect(page.getByRole('alert')).toContainText('Only rule segments are edited here')
})

/** The day `days` ago, as the API's dates are written (UTC). */
function daysAgo(days: number): string {
  return new Date(Date.now() - days * 86_400_000).toISOString().slice(0, 10)
}

test('the list shows every segment with a 30-day sparkline drawn from the API’s trends', async ({ page }) => {
  const workspace = await signIn(page)
  // A segment evaluated 20 and 10 days ago and now: a trend that moves.
  const made = await page.request.post(`/api/v1/workspaces/${workspace}/segments`, {
    data: {
      name: `Recent buyers ${Date.now()}`,
      rule: { type: 'performed', event: 'order', window: { last_days: 30 } },
      as_of: daysAgo(20),
    },
  })
  expect(made.ok(), await made.text()).toBeTruthy()
  const moving = await made.json()
  for (const asOf of [daysAgo(10), 'now']) {
    const changed = await page.request.patch(`/api/v1/workspaces/${workspace}/segments/${moving.id}`, {
      data: { as_of: asOf },
    })
    expect(changed.ok(), await changed.text()).toBeTruthy()
  }
  await page.reload()
  const listed = await apiGet(page, `/workspaces/${workspace}/segments?limit=500`)
  const trends = await apiGet(page, `/workspaces/${workspace}/segments/trends?days=30`)
  expect(trends.days).toHaveLength(30)
  const rows = page.locator('.ant-table-row')
  await expect(rows).toHaveCount(Math.min(listed.total, 25))
  await expect(page.locator('.ant-table-row .sparkline svg path.recharts-curve')).toHaveCount(Math.min(listed.total, 25))

  // A row's sparkline says what the trend route says for that segment.
  const champions = listed.items.find((s: { name: string }) => s.name === 'Champions')
  const sizes: (number | null)[] = trends.segments.find(
    (t: { segment_id: number }) => t.segment_id === champions.id,
  ).sizes
  const start = sizes.findIndex((n) => n !== null)
  const since = new Date(`${trends.days[start]}T00:00:00Z`).toLocaleDateString('en-US', {
    month: 'short',
    day: 'numeric',
    timeZone: 'UTC',
  })
  const row = page.locator('.ant-table-row', { has: page.getByRole('link', { name: 'Champions', exact: true }) })
  await expect(row.getByRole('img')).toHaveAttribute(
    'aria-label',
    `Champions: ${sizes[start]!.toLocaleString('en-US')} to ${sizes[29]!.toLocaleString('en-US')} customers since ${since}`,
  )
  expect(sizes[29]).toBe(champions.customers)

  // The moving segment starts 20 days ago and its change is the API's last minus first.
  const trend: (number | null)[] = trends.segments.find(
    (t: { segment_id: number }) => t.segment_id === moving.id,
  ).sizes
  expect(trend.findIndex((n) => n !== null)).toBe(9)
  const change = trend[29]! - trend[9]!
  const movingRow = page.locator('.ant-table-row', { hasText: moving.name })
  await expect(movingRow.getByRole('img')).toHaveAttribute(
    'aria-label',
    new RegExp(`^${moving.name}: ${trend[9]!.toLocaleString('en-US')} to ${trend[29]!.toLocaleString('en-US')} customers since`),
  )
  await expect(movingRow).toContainText(
    `${change > 0 ? '+' : change < 0 ? '−' : '±'}${Math.abs(change).toLocaleString('en-US')}`,
  )
  // The kind filter keeps only that kind.
  await page.getByLabel('Kind').click()
  await options(page).getByTitle('rfm', { exact: true }).click()
  const rfm = listed.items.filter((s: { kind: string }) => s.kind === 'rfm').length
  await expect(rows).toHaveCount(rfm)
  await page.reload()
  await expect(rows).toHaveCount(Math.min(listed.total, 25))
  await shot(page, 'segments')

  await page.setViewportSize(PHONE)
  await expect(rows.first()).toBeVisible()
  await expectFitsPhone(page)
  await shot(page, 'segments-phone')
})

test('the builder refuses a taken name in plain words and fits a phone', async ({ page }) => {
  const workspace = await signIn(page)
  await page.setViewportSize(PHONE)
  await page.goto(`/w/${workspace}/segments/new`)
  const first = page.getByRole('group', { name: 'Condition 1', exact: true })
  await choose(first.getByLabel('Condition type'), 'Segment membership')
  await choose(first.getByLabel('Segment', { exact: true }), 'Champions')
  const count = await apiCount(page, workspace, { type: 'in_segment', segment: 'Champions' })
  await expect(matching(page)).toHaveText(count.toLocaleString('en-US'))
  await expectFitsPhone(page)
  await shot(page, 'segment-builder-phone')

  await page.getByLabel('Name', { exact: true }).fill('Champions')
  await page.getByRole('button', { name: 'Save segment' }).click()
  await expect(page.getByRole('alert').filter({ hasText: 'already exists' })).toContainText(
    "a segment named 'Champions' already exists",
  )
  await expect(page).toHaveURL(/\/segments\/new$/)
})
