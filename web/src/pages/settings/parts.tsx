import type { ReactNode } from 'react'
import { Alert, Card, Space, Typography } from 'antd'

/** One part of a tab: a title, a line on what it is for, and its content. */
export function Section({
  title,
  intro,
  extra,
  children,
}: {
  title: string
  intro?: ReactNode
  extra?: ReactNode
  children: ReactNode
}) {
  return (
    <Card
      variant="outlined"
      title={title}
      extra={extra}
      styles={{ header: { flexWrap: 'wrap', gap: 8 } }}
    >
      <Space orientation="vertical" size="middle" style={{ width: '100%' }}>
        {intro && <Typography.Paragraph type="secondary" style={{ margin: 0 }}>{intro}</Typography.Paragraph>}
        {children}
      </Space>
    </Card>
  )
}

/** What a role that may not see a part reads instead of a refusal. */
export function NotAllowed({ what, who = 'owners and admins' }: { what: string; who?: string }) {
  return <Alert type="info" showIcon title={`Only ${who} can ${what}.`} />
}

/** A failed change, in the API's words. */
export function ChangeFailed({ error }: { error: Error | null }) {
  return error ? <Alert type="error" showIcon title={error.message} /> : null
}
