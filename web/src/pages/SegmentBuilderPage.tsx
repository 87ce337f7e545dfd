import { Typography } from 'antd'

/** Placeholder until this screen is built (issue 9). */
export default function SegmentBuilderPage() {
  return <Typography.Title level={2}>New segment</Typography.Title>
}
