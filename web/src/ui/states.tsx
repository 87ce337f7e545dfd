import type { ReactNode } from 'react'
import { Alert, Empty, Spin } from 'antd'

/** Loading, error and empty states in plain words, the same on every screen. */
export function Loading({ what }: { what: string }) {
  return (
    <div role="status" style={{ padding: 48, textAlign: 'center' }}>
      <Spin />
      <div style={{ marginTop: 8, color: '#888' }}>Loading {what}…</div>
    </div>
  )
}

export function Failed({ error }: { error: Error }) {
  return <Alert type="error" showIcon title={error.message} />
}

export function Nothing({ children }: { children: ReactNode }) {
  return <Empty image={Empty.PRESENTED_IMAGE_SIMPLE} description={children} />
}

/** Render a query's data, or its loading or error state. */
export function Query<T>({
  query,
  what,
  children,
}: {
  query: { isPending: boolean; isError: boolean; error: Error | null; data: T | undefined }
  what: string
  children: (data: T) => ReactNode
}) {
  if (query.isError) return <Failed error={query.error!} />
  if (query.isPending) return <Loading what={what} />
  return <>{children(query.data as T)}</>
}
