import { Typography } from 'antd'

/** Placeholder until this screen is built (issue 9). */
export default function SettingsPage() {
  return <Typography.Title level={2}>Settings</Typography.Title>
}
