import { Typography } from 'antd'

/** Placeholder until this screen is built (issue 9). */
export default function CustomerPage() {
  return <Typography.Title level={2}>Customer</Typography.Title>
}
