import { Typography } from 'antd'

/** Placeholder until this screen is built (issue 9). */
export default function ActionsPage() {
  return <Typography.Title level={2}>Actions</Typography.Title>
}
