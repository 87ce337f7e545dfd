import { expect, test } from '@playwright/test'
import { PHONE, expectFitsPhone, signIn } from './helpers'

const SECTIONS = [
  ['Get started', 'onboarding'],
  ['Segments', 'segments'],
  ['Explorer', 'explorer'],
  ['Analyses', 'analyses'],
  ['Customers', 'customers'],
  ['Actions', 'actions'],
  ['Settings', 'settings'],
] as const

test('the menu opens every screen, each with its title and no error', async ({ page }) => {
  const workspace = await signIn(page)
  for (const [label, path] of SECTIONS) {
    await page.getByRole('menuitem', { name: label }).click()
    await expect(page).toHaveURL(new RegExp(`/w/${workspace}/${path}(/|$)`))
    await expect(page.locator('.content').getByRole('heading').first()).toBeVisible()
    await expect(page.locator('.ant-alert-error')).toHaveCount(0)
  }
})

test('at phone width the menu is a drawer and the page never scrolls sideways', async ({
  page,
}) => {
  await page.setViewportSize(PHONE)
  const workspace = await signIn(page)
  await expectFitsPhone(page)
  for (const [label, path] of SECTIONS) {
    await page.getByRole('button', { name: 'Menu' }).click()
    await page.getByRole('menuitem', { name: label }).click()
    await expect(page).toHaveURL(new RegExp(`/w/${workspace}/${path}(/|$)`))
    await expect(page.getByRole('menuitem', { name: label })).toBeHidden()
    await expect(page.locator('.content').getByRole('heading').first()).toBeVisible()
    await expectFitsPhone(page)
  }
})

test('the workspace switcher keeps the screen you are on', async ({ page }) => {
  await signIn(page)
  const other = await page.request.post('/api/v1/workspaces', { data: { name: 'second shop' } })
  expect(other.ok()).toBeTruthy()
  const { id } = await other.json()
  await page.reload()
  await page.getByRole('menuitem', { name: 'Customers' }).click()
  await page.getByLabel('Workspace').click()
  await page.locator('.ant-select-item-option', { hasText: 'second shop' }).click()
  await expect(page).toHaveURL(new RegExp(`/w/${id}/customers$`))
})
