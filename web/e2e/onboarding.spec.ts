import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { expect, test, type Page } from '@playwright/test'
import { apiGet, expectFitsPhone, PHONE, shot, signIn } from './helpers'

// Real files from ../shared/data (paths from web/, where Playwright runs).
const CDNOW = resolve('../../shared/data/cdnow/CDNOW_sample.txt')
const ONLINE_RETAIL = resolve('../../shared/data/online_retail/online_retail_2010-12_2011-12.csv.gz')

const count = (n: number) => n.toLocaleString('en-US')

/** A new workspace made through the API; its id. */
async function newWorkspace(page: Page, name: string): Promise<number> {
  const made = await page.request.post('/api/v1/workspaces', { data: { name } })
  expect(made.ok()).toBeTruthy()
  return (await made.json()).id
}

/** What the API reads in a file, uploaded as the screen does (nothing is imported). */
async function apiInspect(page: Page, workspace: number, file: string, preset = 'auto') {
  const answer = await page.request.post(`/api/v1/workspaces/${workspace}/imports`, {
    multipart: {
      file: { name: 'CDNOW_sample.txt', mimeType: 'text/plain', buffer: readFileSync(file) },
      preset,
    },
  })
  expect(answer.status()).toBe(201)
  return answer.json()
}

/** The mapping table's row for a field. */
const fieldRow = (page: Page, field: string) =>
  page.getByRole('table', { name: 'Field mapping' }).locator('tr', { has: page.getByText(field, { exact: true }) })

/** Pick an option of an antd Select found by its label. */
async function choose(page: Page, label: string, option: string | RegExp) {
  await page.getByLabel(label, { exact: true }).click()
  await page.locator('.ant-select-dropdown:visible .ant-select-item-option', { hasText: option }).first().click()
}

test('the whole onboarding: CDNOW into a new workspace, segments, a campaign and an export', async ({ page }) => {
  test.setTimeout(300_000)
  const home = await signIn(page)
  await page.goto(`/w/${home}/onboarding`)

  // 1. A new workspace, and the wizard carries on in it.
  const name = `CDNOW ${Date.now()}`
  await page.getByLabel('Into a new workspace').check()
  await page.getByLabel('Workspace name').fill(name)
  await shot(page, 'onboarding-workspace')
  await page.getByRole('button', { name: 'Create the workspace and continue' }).click()
  await expect(page).toHaveURL(/\/w\/\d+\/onboarding\?step=upload$/)
  const ws = Number(page.url().match(/\/w\/(\d+)\//)![1])
  const listed = await apiGet(page, '/workspaces')
  expect(listed.items.find((w: { id: number }) => w.id === ws).name).toBe(name)
  await expect(page.locator('.ant-select', { has: page.getByLabel('Workspace') })).toContainText(name) // the switcher knows it

  // 2. Upload the real file with the preset on auto.
  await expect(page.getByText('Drop a file here, or choose one')).toBeVisible()
  await shot(page, 'onboarding-upload')
  // The drop zone is reachable by keyboard: Enter opens the file chooser.
  const chooser = page.waitForEvent('filechooser')
  await page.getByRole('button', { name: /Drop a file here, or choose one/ }).focus()
  await page.keyboard.press('Enter')
  await (await chooser).setFiles(CDNOW)

  // 3. The mapping shown is the one the API detects.
  await expect(page.getByRole('heading', { name: 'Check how Strata reads CDNOW_sample.txt' })).toBeVisible()
  const detected = await apiInspect(page, ws, CDNOW)
  expect(detected.preset).toBe('cdnow')
  await expect(page.getByText(`${detected.preset_title} (${Math.round(detected.confidence * 100)}% sure)`)).toBeVisible()
  await expect(page.getByText(count(detected.rows), { exact: true })).toBeVisible()
  for (const [field, column] of Object.entries(detected.mapping.fields as Record<string, string>)) {
    await expect(fieldRow(page, field)).toContainText(column)
    const sample = detected.columns.find((c: { column: string }) => c.column === column).sample
    await expect(fieldRow(page, field)).toContainText(sample)
  }
  await expect(fieldRow(page, 'timestamp')).toContainText('1997-01-01T00:00:00') // read as a time
  await expect(page.getByText('All 6,919 rows read cleanly.')).toBeVisible()

  // A preset that does not fit the file is refused in plain words; the mapping stays.
  await choose(page, 'Preset', 'transactions: transaction lines')
  await page.getByRole('button', { name: 'Check again' }).click()
  await expect(page.getByRole('alert').filter({ hasText: 'no column found for order_id' })).toBeVisible()
  await choose(page, 'Preset', 'cdnow: a CDNOW transaction file')

  // A column changed by hand is checked by the server: quantity read from the sample id.
  await choose(page, 'Column for quantity', 'column_2')
  await expect(fieldRow(page, 'quantity')).toContainText('your choice')
  await page.getByRole('button', { name: 'Check again' }).click()
  await expect(fieldRow(page, 'quantity')).toContainText('0001')
  await expect(fieldRow(page, 'quantity').locator('td').last()).toHaveText('1')
  await choose(page, 'Column for quantity', 'column_4')
  await page.getByRole('button', { name: 'Check again' }).click()
  await expect(fieldRow(page, 'quantity').locator('td').last()).toHaveText('2')
  await expect(fieldRow(page, 'quantity')).toContainText('100% sure')
  await shot(page, 'onboarding-mapping')

  // The mapping at phone width: nothing scrolls sideways.
  await page.setViewportSize(PHONE)
  await expectFitsPhone(page)
  await shot(page, 'onboarding-phone')
  await page.setViewportSize({ width: 1280, height: 800 })

  // 4. Import: the figures shown are the API's.
  await page.getByRole('button', { name: 'Import 6,919 rows' }).click()
  await expect(page).toHaveURL(/step=import&job=\d+/)
  await expect(page.getByRole('heading', { name: 'Imported' })).toBeVisible({ timeout: 60_000 })
  const imports = await apiGet(page, `/workspaces/${ws}/imports`)
  const run = await apiGet(page, `/workspaces/${ws}/imports/${imports.items[0].id}`)
  const stats = await apiGet(page, `/workspaces/${ws}/stats`)
  expect(run.report.rows_read).toBe(6919)
  expect(stats.customers).toBe(2357)
  const figure = (title: string) => page.locator('.ant-statistic', { hasText: title })
  await expect(figure('Rows read')).toContainText(count(run.report.rows_read))
  await expect(figure('Rows loaded')).toContainText(count(run.report.rows_read))
  await expect(figure('Rows refused')).toContainText('0')
  await expect(figure('New customers')).toContainText(count(stats.customers))
  await expect(figure('Orders')).toContainText(count(stats.orders))
  await expect(figure('Net revenue')).toContainText(
    stats.net_revenue.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 }),
  )
  await expect(page.getByText(`now holds ${count(stats.customers)} customers`)).toBeVisible()
  await shot(page, 'onboarding-import')
  await page.reload() // the report comes back from the address
  await expect(figure('Rows read')).toContainText('6,919')

  // 5. Segmentation as of the file's last day; churn has no labels here and says so.
  await page.getByRole('button', { name: 'Continue to segmentation' }).click()
  await expect(page.getByLabel('As of the last event in the data (Jun 30, 1998): right for a historical file')).toBeChecked()
  await page.getByRole('button', { name: 'Run all four' }).click()
  const card = (title: string) => page.getByLabel(title, { exact: true })
  await expect(card('RFM segments')).toContainText('Sorted 2,357 customers into 11 segments', { timeout: 120_000 })
  await expect(card('Behaviour clusters')).toContainText('groups among 2,357 customers', { timeout: 120_000 })
  await expect(card('Lifetime value')).toContainText('Predicted the next 12 months of 2,357 customers', {
    timeout: 120_000,
  })
  await expect(card('Churn risk')).toContainText('Not run on this data', { timeout: 120_000 })
  await expect(card('Churn risk')).toContainText('no churn labels')
  await expect(card('Churn risk')).toContainText('You can carry on without it.')
  const jobs = await apiGet(page, `/workspaces/${ws}/jobs?limit=10`)
  const rfm = jobs.items.find((j: { kind: string }) => j.kind === 'rfm')
  expect(rfm.params.as_of).toBe('1998-06-30')
  const largest = [...rfm.result.segments].sort((a, b) => b.customers - a.customers)[0]
  await expect(card('RFM segments')).toContainText(`${largest.name} (${count(largest.customers)})`)
  await shot(page, 'onboarding-segmentation')

  // 6. The segments listed are the API's, with their sizes, and each opens its page.
  await page.getByRole('button', { name: 'Review the segments' }).click()
  const segments = await apiGet(page, `/workspaces/${ws}/segments?limit=500`)
  await expect(page.getByRole('heading', { name: `${segments.total} segments` })).toBeVisible()
  await expect(page.locator('.ant-table-row')).toHaveCount(segments.total)
  for (const s of segments.items) {
    const row = page.locator('.ant-table-row', { has: page.getByRole('link', { name: s.name, exact: true }) })
    await expect(row).toContainText(count(s.customers))
  }
  await shot(page, 'onboarding-segments')
  const champions = segments.items.find((s: { name: string }) => s.name === 'Champions')
  await page.getByRole('link', { name: 'Champions', exact: true }).click()
  await expect(page).toHaveURL(new RegExp(`/w/${ws}/segments/${champions.id}$`))
  await page.goBack()

  // 7. A campaign, then an export, both there in the API afterwards.
  await page.getByRole('button', { name: 'Act on a segment' }).click()
  await choose(page, 'Segment', `Champions (${count(champions.customers)})`)
  await expect(page.getByLabel('Campaign name')).toHaveValue('First campaign: Champions')
  await page.getByRole('button', { name: 'Create the campaign' }).click()
  await expect(page.getByText('Campaign “First campaign: Champions” created')).toBeVisible()
  const campaigns = await apiGet(page, `/workspaces/${ws}/campaigns`)
  expect(campaigns.items.map((c: { name: string; segment_id: number }) => [c.name, c.segment_id])).toContainEqual([
    'First campaign: Champions',
    champions.id,
  ])
  await shot(page, 'onboarding-action')
  await expect(page.getByRole('link', { name: 'Open Actions' })).toHaveAttribute('href', `/w/${ws}/actions`)

  await page.getByRole('button', { name: 'Make another' }).click()
  await page.getByText('An export file').click()
  await choose(page, 'Segment', `Champions (${count(champions.customers)})`)
  await choose(page, 'Format', 'Klaviyo list')
  await page.getByRole('button', { name: 'Write the export' }).click()
  await expect(page.getByText('Export of Champions written')).toBeVisible()
  const exports = await apiGet(page, `/workspaces/${ws}/exports`)
  const made = exports.items[0]
  expect([made.segment_id, made.format, made.rows]).toEqual([champions.id, 'klaviyo', champions.customers])
  await expect(page.getByText(`${count(made.rows)} customers in ${made.filename}`)).toBeVisible()
  const file = await page.request.get(
    (await page.getByRole('link', { name: 'Download the file' }).getAttribute('href'))!,
  )
  expect(file.ok()).toBeTruthy()
})

test('Online Retail: the rows the importer refuses are counted by reason, as the API reports', async ({
  page,
}) => {
  test.setTimeout(180_000)
  await signIn(page)
  const ws = await newWorkspace(page, `Online Retail ${Date.now()}`)
  // The first 5,000 invoice lines of the real file (the whole one takes minutes here).
  const lines = gunzipSync(readFileSync(ONLINE_RETAIL)).toString('utf-8').split('\n')
  const head = lines.slice(0, 5001).join('\n') + '\n'
  await page.goto(`/w/${ws}/onboarding?step=upload`)
  await page.locator('input[type=file]').setInputFiles({
    name: 'online_retail_head.csv',
    mimeType: 'text/csv',
    buffer: Buffer.from(head),
  })
  await expect(page.getByText('transaction lines (80% sure)')).toBeVisible()
  await expect(fieldRow(page, 'customer_id')).toContainText('CustomerID')
  await expect(fieldRow(page, 'customer_id')).toContainText('17850') // 17850.0 read as an id
  await expect(page.getByText('1,205 of 5,000 rows would be left out')).toBeVisible()
  await page.getByRole('button', { name: 'Import 5,000 rows' }).click()
  await expect(page.getByRole('heading', { name: 'Imported' })).toBeVisible({ timeout: 60_000 })

  const imports = await apiGet(page, `/workspaces/${ws}/imports`)
  const run = await apiGet(page, `/workspaces/${ws}/imports/${imports.items[0].id}`)
  const refused = run.report.rows_skipped['no customer id']
  expect(refused).toBe(1205)
  const figure = (title: string) => page.locator('.ant-statistic', { hasText: title })
  await expect(figure('Rows refused')).toContainText(count(refused))
  await expect(figure('Rows loaded')).toContainText(count(run.report.rows_read - refused))
  await expect(figure('Orders')).toContainText(count(run.report.orders))
  await expect(page.getByText(`no customer id (${count(refused)})`)).toBeVisible()
})

test('bad values are listed row by row and download as CSV', async ({ page }) => {
  await signIn(page)
  const ws = await newWorkspace(page, `Bad rows ${Date.now()}`)
  const rows = ['customer_id,email,birth_date,signup_date']
  for (let i = 1; i <= 30; i++)
    rows.push(`c${i},c${i}@example.com,${i % 3 === 0 ? 'someday' : '1990-01-02'},2024-02-0${(i % 9) + 1}`)
  await page.goto(`/w/${ws}/onboarding?step=upload`)
  await page.locator('input[type=file]').setInputFiles({
    name: 'customers.csv',
    mimeType: 'text/csv',
    buffer: Buffer.from(rows.join('\n') + '\n'),
  })
  await expect(page.getByText('a customer list')).toBeVisible()
  await expect(page.getByText('0 of 30 rows would be left out; 10 values cannot be read.')).toBeVisible()
  await page.getByRole('button', { name: 'Import 30 rows' }).click()
  await expect(page.getByRole('heading', { name: 'Imported' })).toBeVisible({ timeout: 60_000 })

  const imports = await apiGet(page, `/workspaces/${ws}/imports`)
  const id = imports.items[0].id
  const errors = await apiGet(page, `/workspaces/${ws}/imports/${id}/errors?limit=20`)
  expect(errors.total).toBe(10)
  const table = page.getByRole('table', { name: 'Rows with a problem' })
  await expect(table.locator('.ant-table-row')).toHaveCount(10)
  const first = errors.items[0]
  await expect(table.locator('.ant-table-row').first()).toContainText(
    [String(first.row), first.column, first.reason, first.value].join(''),
  )
  await expect(page.locator('.ant-statistic', { hasText: 'Bad values' })).toContainText('10')
  const download = page.waitForEvent('download')
  await page.getByRole('link', { name: 'Download the bad rows (CSV)' }).click()
  const csv = readFileSync((await (await download).path())!, 'utf-8').trim().split(/\r?\n/)
  expect(csv[0]).toBe('row,column,reason,value')
  expect(csv).toHaveLength(11)
  expect(csv[1]).toContain(`${first.row},birth_date,`)
})

test('a file Strata cannot read is refused in plain words', async ({ page }) => {
  await signIn(page)
  const ws = await newWorkspace(page, `Unreadable ${Date.now()}`)
  await page.goto(`/w/${ws}/onboarding?step=upload`)
  await page.locator('input[type=file]').setInputFiles({
    name: 'notes.csv',
    mimeType: 'text/csv',
    buffer: Buffer.from('just,some\nwords,here\n'),
  })
  const alert = page.getByRole('alert').filter({ hasText: 'Strata could not read notes.csv' })
  await expect(alert).toBeVisible()
  await expect(alert).not.toContainText('Something went wrong')
  await expect(page.getByRole('heading', { name: 'Upload your data' })).toBeVisible()
})
