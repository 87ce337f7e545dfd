import { Typography } from 'antd'
import { useParams } from 'react-router-dom'
import { CustomerTable } from './customer/CustomerTable'

/** Every customer of the workspace: search by id, e-mail or name, order by any column,
 * page through, and open a profile. */
export default function CustomersPage() {
  const workspaceId = Number(useParams().workspaceId)
  return (
    <>
      <Typography.Title level={3}>Customers</Typography.Title>
      <CustomerTable workspaceId={workspaceId} />
    </>
  )
}
