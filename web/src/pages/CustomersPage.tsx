import { Typography } from 'antd'

/** Placeholder until this screen is built (issue 9). */
export default function CustomersPage() {
  return <Typography.Title level={2}>Customers</Typography.Title>
}
