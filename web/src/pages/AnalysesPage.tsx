import { Typography } from 'antd'

/** Placeholder until this screen is built (issue 9). */
export default function AnalysesPage() {
  return <Typography.Title level={2}>Analyses</Typography.Title>
}
