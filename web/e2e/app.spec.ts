import { expect, test } from '@playwright/test'
import { OWNER, SHOTS, signIn } from './helpers'

test('the app asks for a sign-in first', async ({ page }) => {
  await page.goto('/')
  await expect(page).toHaveURL(/\/login$/)
})

test('a wrong password is refused in plain words', async ({ page }) => {
  await page.goto('/login')
  await page.getByLabel('E-mail').fill(OWNER.email)
  await page.getByLabel('Password').fill('not the password')
  await page.getByRole('button', { name: 'Sign in' }).click()
  await expect(page.getByRole('alert')).toContainText('wrong e-mail or password')
  await page.screenshot({ path: `${SHOTS}/login.png` })
})

test('the segments list shows every segment the API has, with its size', async ({ page }) => {
  await signIn(page)
  const workspace = page.url().match(/\/w\/(\d+)\//)![1]
  const api = await page.request.get(`/api/v1/workspaces/${workspace}/segments?limit=500`)
  const { items, total } = await api.json()
  expect(total).toBeGreaterThan(10) // RFM made its 11 segments
  await expect(page.locator('.ant-table-row')).toHaveCount(Math.min(total, 25))
  const first = [...items].sort((a, b) => a.name.localeCompare(b.name))[0]
  const row = page.locator('.ant-table-row', { hasText: first.name })
  await expect(row).toContainText(first.customers.toLocaleString('en-US'))

  await page.getByLabel('Search segments').fill('champ')
  await expect(page.locator('.ant-table-row')).toHaveCount(
    items.filter((s: { name: string }) => s.name.toLowerCase().includes('champ')).length,
  )
})

test('a reload of a screen address keeps you on it', async ({ page }) => {
  await signIn(page)
  const here = page.url()
  await page.reload()
  await expect(page).toHaveURL(here)
  await expect(page.getByRole('heading', { name: 'Segments' })).toBeVisible()
})

test('a segment shows its members page by page and why each one is in it', async ({ page }) => {
  await signIn(page)
  const workspace = page.url().match(/\/w\/(\d+)\//)![1]
  const listed = await (
    await page.request.get(`/api/v1/workspaces/${workspace}/segments?limit=500`)
  ).json()
  const segment = listed.items.find((s: { customers: number }) => s.customers > 25)
  expect(segment, 'a segment with more than one page of members').toBeTruthy()

  await page.getByRole('link', { name: segment.name, exact: true }).click()
  await expect(page).toHaveURL(new RegExp(`/segments/${segment.id}$`))
  await expect(page.getByRole('heading', { name: segment.name })).toBeVisible()
  await page.getByRole('tab', { name: 'Members' }).click()
  await expect(page.getByText(`${segment.customers.toLocaleString('en-US')} customers`)).toBeVisible()
  await expect(page.locator('.ant-table-row')).toHaveCount(25)

  const members = await (
    await page.request.get(
      `/api/v1/workspaces/${workspace}/segments/${segment.id}/members?limit=25&offset=25`,
    )
  ).json()
  await page.getByRole('listitem', { name: '2' }).click()
  await expect(page.locator('.ant-table-row').first()).toContainText(members.items[0].external_id)

  await page.getByRole('button', { name: 'Why here?' }).first().click()
  await expect(page.getByLabel('Explanation')).toContainText('✓')
})
