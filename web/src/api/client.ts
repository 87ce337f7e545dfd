// The API client. Its types come from web/openapi.json (`npm run gen:api`), which
// scripts/export_openapi.py writes from the FastAPI app: nothing here is typed by hand.
import createClient from 'openapi-fetch'
import type { paths } from './schema'

export const api = createClient<paths>({ credentials: 'include' })

/** The problem detail's one-line message, for an error state in plain words. */
export function problemText(error: unknown): string {
  if (error && typeof error === 'object' && 'detail' in error) {
    const detail = (error as { detail: unknown }).detail
    if (typeof detail === 'string') return detail
  }
  return 'Something went wrong; try again.'
}
