import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { expect, test, type Page } from '@playwright/test'
import { apiGet, expectFitsPhone, PHONE, shot, signIn } from './helpers'

// The tests share one server and run in order; whatever they make has a unique name.
const RUN = Date.now().toString(36)

type Segment = { id: number; name: string; customers: number | null }

async function openTab(page: Page, tab: string): Promise<number> {
  const workspace = await signIn(page)
  await page.goto(`/w/${workspace}/actions/${tab}`)
  return workspace
}

/** Pick an option of the antd Select labelled `label` by the text it shows (typed first
 * where the Select searches: its list only renders the options in view). */
async function choose(page: Page, label: string, option: string) {
  // Optional fields' labels end in "(optional)".
  const box = page.getByLabel(new RegExp(`^${label.replace(/[()]/g, '\\$&')}\\s*(\\(optional\\))?$`))
  await box.click()
  if (await box.isEditable()) await box.fill(option)
  await page.locator('.ant-select-dropdown:visible .ant-select-item-option', { hasText: option }).first().click()
}

/** A segment whose members fill both a treated group and a holdout, but not too many. */
async function midSizeSegment(page: Page, workspace: number): Promise<Segment> {
  const { items } = await apiGet<{ items: Segment[] }>(page, `/workspaces/${workspace}/segments?limit=500`)
  const fit = items
    .filter((s) => (s.customers ?? 0) >= 100 && (s.customers ?? 0) <= 500)
    .sort((a, b) => (b.customers ?? 0) - (a.customers ?? 0))[0]
  expect(fit, 'a segment of 100 to 500 customers').toBeTruthy()
  return fit
}

test('a webhook added in the browser is listed, the API has it, and its secret shows once', async ({ page }) => {
  const workspace = await openTab(page, 'webhooks')
  const name = `CRM ${RUN}`
  await page.getByLabel('Name').fill(name)
  await page.getByLabel('URL').fill('https://crm.example.com/strata')
  await choose(page, 'Events', 'segment.entered')
  await page.keyboard.press('Escape')
  await page.getByRole('button', { name: 'Add endpoint' }).click()

  const secret = page.getByLabel('Signing secret')
  await expect(secret).toHaveText(/^whsec_[A-Za-z0-9+/=]{40,}$/)
  const row = page.locator('.ant-table-row', { hasText: name })
  await expect(row).toContainText('https://crm.example.com/strata')
  await expect(row).toContainText('segment.entered')

  const { items } = await apiGet(page, `/workspaces/${workspace}/webhooks`)
  const hook = items.find((h: { name: string }) => h.name === name)
  expect(hook).toMatchObject({ url: 'https://crm.example.com/strata', event_types: ['segment.entered'], status: 'active' })
  expect(hook.secret, 'the list never holds the secret').toBeUndefined()

  await page.getByRole('button', { name: 'I have saved it' }).click()
  await expect(secret).toHaveCount(0)
  await page.reload()
  await expect(row).toBeVisible()
  await expect(page.getByLabel('Signing secret')).toHaveCount(0)

  // A test message: the row's last delivery follows the API's newest message.
  await row.getByRole('button', { name: 'Send test' }).click()
  await expect(page.getByRole('alert').filter({ hasText: 'test message is on its way' })).toBeVisible()
  const sent = await apiGet(page, `/workspaces/${workspace}/webhooks/${hook.id}/messages?limit=1`)
  expect(sent.items[0].event_type).toBe('webhook.test')
  await expect(row).toContainText('webhook.test')
  await shot(page, 'actions-webhooks')
})

test('a private URL is refused in plain words next to the form', async ({ page }) => {
  const workspace = await openTab(page, 'webhooks')
  const name = `Intranet ${RUN}`
  await page.getByLabel('Name').fill(name)
  await page.getByLabel('URL').fill('http://10.0.0.5/hook')
  await page.getByRole('button', { name: 'Add endpoint' }).click()
  await expect(page.getByRole('alert')).toContainText('10.0.0.5 is a private address')
  const { items } = await apiGet(page, `/workspaces/${workspace}/webhooks`)
  expect(items.map((h: { name: string }) => h.name)).not.toContain(name)
})

test('an endpoint shows its delivery log, every attempt, and replays a message', async ({ page }) => {
  const workspace = await openTab(page, 'webhooks')
  const { items } = await apiGet(page, `/workspaces/${workspace}/webhooks`)
  const hook = items.find((h: { name: string }) => h.name === `CRM ${RUN}`)
  await page.getByRole('link', { name: hook.name }).click()
  await expect(page).toHaveURL(new RegExp(`/actions/webhooks/${hook.id}$`))
  await expect(page.getByRole('heading', { name: hook.name })).toBeVisible()

  const log = await apiGet(page, `/workspaces/${workspace}/webhooks/${hook.id}/messages`)
  const message = log.items[0]
  const row = page.locator('.ant-table-row', { hasText: message.msg_id })
  await expect(row).toContainText('webhook.test')
  // crm.example.com does not resolve here: the attempt failed, and says why.
  await expect
    .poll(async () => (await apiGet(page, `/workspaces/${workspace}/webhooks/messages/${message.id}`)).attempt_log.length)
    .toBeGreaterThan(0)
  await row.getByRole('button', { name: 'Expand row' }).click()
  await expect(page.getByLabel('Payload')).toContainText('"type": "webhook.test"')
  await expect(page.locator('.ant-table-expanded-row')).toContainText('cannot connect')
  await shot(page, 'actions-webhook-log')

  const before = (await apiGet(page, `/workspaces/${workspace}/webhooks/messages/${message.id}`)).attempt_log.length
  await row.getByRole('button', { name: 'Replay' }).click()
  await expect
    .poll(async () => (await apiGet(page, `/workspaces/${workspace}/webhooks/messages/${message.id}`)).attempt_log.length)
    .toBeGreaterThan(before)
})

test('an endpoint can be edited, and a private address is refused there too', async ({ page }) => {
  const workspace = await openTab(page, 'webhooks')
  const { items } = await apiGet(page, `/workspaces/${workspace}/webhooks`)
  const hook = items.find((h: { name: string }) => h.name === `CRM ${RUN}`)
  await page.getByRole('link', { name: hook.name }).click()
  await page.getByRole('button', { name: 'Edit' }).click()
  const url = page.getByLabel('URL')
  await url.fill('http://192.168.1.20/hook')
  await page.getByRole('button', { name: 'Save' }).click()
  await expect(page.getByRole('alert')).toContainText('192.168.1.20 is a private address')
  await url.fill('https://crm.example.com/strata/v2')
  await page.getByRole('button', { name: 'Save' }).click()
  await expect(page.getByRole('button', { name: 'Save' })).toHaveCount(0)
  await expect(page.locator('.ant-descriptions')).toContainText('https://crm.example.com/strata/v2')
  expect((await apiGet(page, `/workspaces/${workspace}/webhooks/${hook.id}`)).url).toBe('https://crm.example.com/strata/v2')
})

test('an export of a segment is listed with the API row count and downloads the file', async ({ page }) => {
  const workspace = await openTab(page, 'exports')
  const segment = await midSizeSegment(page, workspace)
  await choose(page, 'Segment', segment.name)
  await choose(page, 'Format', 'Klaviyo')
  await page.getByRole('button', { name: 'Export', exact: true }).click()

  await expect(page.getByRole('alert').filter({ hasText: 'rows written as klaviyo' })).toBeVisible()
  const { items } = await apiGet(page, `/workspaces/${workspace}/exports`)
  const made = items[0]
  expect(made).toMatchObject({ segment_id: segment.id, format: 'klaviyo', rows: segment.customers })
  const row = page.locator('.ant-table-row').first()
  await expect(row).toContainText(segment.name)
  await expect(row).toContainText(made.rows.toLocaleString('en-US'))
  await expect(row).toContainText(made.sha256.slice(0, 12))
  await shot(page, 'actions-exports')

  const download = page.waitForEvent('download')
  await row.getByRole('link', { name: 'Download' }).click()
  const file = readFileSync(await (await download).path())
  expect(createHash('sha256').update(file).digest('hex')).toBe(made.sha256)
  const lines = file.toString('utf8').trim().split(/\r?\n/)
  expect(lines[0]).toContain('Email Address')
  expect(lines.length - 1).toBe(made.rows)
})

test('an automation is created and listed, and pausing and resuming it changes the API', async ({ page }) => {
  const workspace = await openTab(page, 'automations')
  const segment = await midSizeSegment(page, workspace)
  const name = `Welcome ${RUN}`
  await page.getByLabel('Name').fill(name)
  await choose(page, 'Segment', segment.name)
  await page.getByLabel('Wait', { exact: true }).fill('2')
  await choose(page, 'Action', 'Tag the customer')
  await page.getByLabel('Tag', { exact: true }).fill('welcomed')
  await page.getByRole('button', { name: 'Create automation' }).click()

  const row = page.locator('.ant-table-row', { hasText: name })
  await expect(row).toContainText('enters, after 2 hours')
  await expect(row).toContainText('tag welcomed')
  const status = async () => {
    const { items } = await apiGet(page, `/workspaces/${workspace}/automations?limit=500`)
    return items.find((a: { name: string }) => a.name === name)
  }
  expect(await status()).toMatchObject({
    segment_id: segment.id,
    trigger: 'enter',
    wait_seconds: 7200,
    action: { kind: 'tag', tag: 'welcomed' },
    status: 'active',
  })
  await shot(page, 'actions-automations')

  await row.getByRole('button', { name: 'Pause' }).click()
  await expect.poll(async () => (await status()).status).toBe('paused')
  await expect(row).toContainText('paused')
  await row.getByRole('button', { name: 'Resume' }).click()
  await expect.poll(async () => (await status()).status).toBe('active')
  await expect(row.getByRole('button', { name: 'Pause' })).toBeVisible()

  await row.getByRole('link', { name }).click()
  await expect(page.getByRole('heading', { name })).toBeVisible()
  await expect(page.getByText('No firings yet')).toBeVisible()
})

test('a campaign with a holdout, launched, shows the API treated and holdout numbers', async ({ page }) => {
  const workspace = await openTab(page, 'campaigns')
  const segment = await midSizeSegment(page, workspace)
  const name = `Spring offer ${RUN}`
  await page.getByLabel('Name').fill(name)
  await choose(page, 'Segment', segment.name)
  await page.getByLabel('Holdout (%)').fill('25')
  await page.getByLabel('Goal event').fill('order')
  await choose(page, 'Action', 'Tag the customer')
  await page.getByLabel('Tag', { exact: true }).fill('spring')
  await page.getByRole('button', { name: 'Create draft' }).click()

  const row = page.locator('.ant-table-row', { hasText: name })
  await expect(row).toContainText('draft')
  await row.getByRole('button', { name: 'Launch' }).click()
  await page.locator('.ant-popconfirm').getByRole('button', { name: 'Launch' }).click()
  await expect(row).toContainText('running')
  const { items } = await apiGet(page, `/workspaces/${workspace}/campaigns`)
  const campaign = items.find((c: { name: string }) => c.name === name)
  expect(campaign).toMatchObject({ status: 'running', holdout_percent: 25, goal_event: 'order' })

  // Orders after the launch from a third of the members, through the tracking API.
  const key = await (
    await page.request.post(`/api/v1/workspaces/${workspace}/keys`, { data: { name: `e2e ${RUN}`, kind: 'write' } })
  ).json()
  const members = await apiGet(page, `/workspaces/${workspace}/segments/${segment.id}/members?limit=500`)
  const buyers = members.items.filter((_: unknown, i: number) => i % 3 === 0)
  const sent = await page.request.post('/v1/batch', {
    headers: { Authorization: `Basic ${Buffer.from(`${key.key}:`).toString('base64')}` },
    data: { batch: buyers.map((m: { external_id: string }) => ({ type: 'track', event: 'order', userId: m.external_id })) },
  })
  expect(sent.ok()).toBeTruthy()
  const resultsPath = `/workspaces/${workspace}/campaigns/${campaign.id}/results`
  await expect.poll(async () => (await apiGet(page, resultsPath)).treated.converted).toBeGreaterThan(0)
  const results = await apiGet(page, resultsPath)

  await row.getByRole('link', { name }).click()
  await expect(page.getByRole('heading', { name })).toBeVisible()
  const groups = page.getByLabel('Groups')
  for (const [label, group] of [['Treated', results.treated], ['Holdout', results.holdout]] as const) {
    const line = groups.locator('.ant-table-row', { hasText: label })
    await expect(line).toContainText(group.customers.toLocaleString('en-US'))
    await expect(line).toContainText(group.converted.toLocaleString('en-US'))
    await expect(line).toContainText(`${(group.rate * 100).toFixed(2)}%`)
  }
  expect(results.treated.customers + results.holdout.customers).toBe(segment.customers)
  const lift = `${results.lift > 0 ? '+' : ''}${(results.lift * 100).toFixed(2)} pts`
  await expect(page.getByText(lift, { exact: true })).toBeVisible()
  await expect(page.getByText(results.p_value.toFixed(4))).toBeVisible()
  await expect(page.getByRole('img', { name: /lift/i }).or(page.locator('.recharts-wrapper')).first()).toBeVisible()
  await shot(page, 'actions-campaign-results')

  await page.getByRole('button', { name: 'End' }).click()
  await page.locator('.ant-popconfirm').getByRole('button', { name: 'End' }).click()
  await expect.poll(async () => (await apiGet(page, `/workspaces/${workspace}/campaigns/${campaign.id}`)).status).toBe('ended')
  await page.getByRole('link', { name: '← Campaigns' }).click()
  await expect(page.locator('.ant-table-row', { hasText: name })).toContainText('ended')
  await shot(page, 'actions-campaigns')
})

test('the actions screens fit a phone', async ({ page }) => {
  const workspace = await signIn(page)
  await page.setViewportSize(PHONE)
  for (const tab of ['automations', 'exports', 'campaigns', 'webhooks']) {
    await page.goto(`/w/${workspace}/actions/${tab}`)
    await expect(page.locator('.ant-table')).toBeVisible()
    await expectFitsPhone(page)
  }
  await shot(page, 'actions-phone')
})
