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
    if (Array.isArray(detail) && detail.length > 0) {
      const first = detail[0] as { msg?: string; loc?: unknown[] }
      const field = first.loc?.filter((part) => typeof part === 'string').slice(-1)[0]
      return `${field ? `${field}: ` : ''}${first.msg ?? 'the request was refused'}`
    }
  }
  return 'Something went wrong; try again.'
}

/** The data of an openapi-fetch answer, or an Error carrying the problem's message:
 * `queryFn: () => unwrap(api.GET(...))`. */
export async function unwrap<T>(
  answer: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  const { data, error, response } = await answer
  if (error !== undefined || !response.ok) throw new Error(problemText(error))
  return data as T
}
