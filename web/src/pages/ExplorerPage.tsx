import { Typography } from 'antd'

/** Placeholder until this screen is built (issue 9). */
export default function ExplorerPage() {
  return <Typography.Title level={2}>Explorer</Typography.Title>
}
