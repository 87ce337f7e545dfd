import { expect, type Page } from '@playwright/test'

export const OWNER = { email: 'owner@e2e.test', password: 'e2e owner password' }
/** Where each screen's screenshot goes (the README shows them from docs/screens/). */
export const SHOTS = 'test-results/screens'
export const PHONE = { width: 390, height: 844 }

/** Sign in as the owner; the id of the workspace the app opened. */
export async function signIn(page: Page): Promise<number> {
  await page.goto('/login')
  await page.getByLabel('E-mail').fill(OWNER.email)
  await page.getByLabel('Password').fill(OWNER.password)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await expect(page).toHaveURL(/\/w\/\d+\/segments$/)
  return Number(page.url().match(/\/w\/(\d+)\//)![1])
}

/** GET an API path as the signed-in user; its JSON. */
export async function apiGet<T = any>(page: Page, path: string): Promise<T> {
  const answer = await page.request.get(`/api/v1${path}`)
  expect(answer.ok(), `GET ${path}: ${answer.status()}`).toBeTruthy()
  return (await answer.json()) as T
}

/** A screenshot of the whole page into the test artifacts. */
export async function shot(page: Page, name: string) {
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true })
}

/** At phone width the page must not scroll sideways: nothing wider than the screen. */
export async function expectFitsPhone(page: Page) {
  const overflow = await page.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  )
  expect(overflow, 'the page scrolls sideways at phone width').toBeLessThanOrEqual(1)
}
