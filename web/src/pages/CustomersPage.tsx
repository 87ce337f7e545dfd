import { Typography } from 'antd'
import { CustomerTable } from './customer/CustomerTable'
import { useWorkspaceId } from '../ui/workspace'

/** Every customer of the workspace: search by id, e-mail or name, order by any column,
 * page through, and open a profile. */
export default function CustomersPage() {
  const workspaceId = useWorkspaceId()
  return (
    <>
      <Typography.Title level={3}>Customers</Typography.Title>
      <CustomerTable workspaceId={workspaceId} />
    </>
  )
}
