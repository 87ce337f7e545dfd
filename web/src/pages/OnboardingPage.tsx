import { Typography } from 'antd'

/** Placeholder until this screen is built (issue 9). */
export default function OnboardingPage() {
  return <Typography.Title level={2}>Get started</Typography.Title>
}
