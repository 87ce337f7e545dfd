import { Tabs, Typography } from 'antd'
import { Navigate, useNavigate, useParams } from 'react-router-dom'
import MembersTab from './settings/MembersTab'
import KeysTab from './settings/KeysTab'
import IcpTab from './settings/IcpTab'
import DestinationsTab from './settings/DestinationsTab'
import ApprovalsTab from './settings/ApprovalsTab'
import AuditTab from './settings/AuditTab'
import PrivacyTab from './settings/PrivacyTab'
import PlanTab from './settings/PlanTab'

// Each tab has its own address (/settings/keys…), so a link or a reload opens it.
const TABS = [
  { key: 'members', label: 'Members and roles', Tab: MembersTab },
  { key: 'keys', label: 'API keys', Tab: KeysTab },
  { key: 'icp', label: 'ICP score', Tab: IcpTab },
  { key: 'destinations', label: 'E-mail and destinations', Tab: DestinationsTab },
  { key: 'approvals', label: 'Approvals', Tab: ApprovalsTab },
  { key: 'audit', label: 'Audit log', Tab: AuditTab },
  { key: 'privacy', label: 'Data rights', Tab: PrivacyTab },
  { key: 'plan', label: 'Plan and usage', Tab: PlanTab },
]

/** The workspace's settings: who has access, keys, the ICP score, where data goes,
 * approvals, the audit log, data rights and the plan, a tab each. */
export default function SettingsPage() {
  const params = useParams()
  const navigate = useNavigate()
  const base = `/w/${params.workspaceId}/settings`
  const tab = (params['*'] ?? '').split('/')[0]
  if (!TABS.some((t) => t.key === tab)) return <Navigate to={`${base}/members`} replace />
  return (
    <>
      <Typography.Title level={3}>Settings</Typography.Title>
      <Tabs
        activeKey={tab}
        onChange={(key) => navigate(`${base}/${key}`)}
        items={TABS.map(({ key, label, Tab }) => ({
          key,
          label,
          // Only the open tab asks the API for its data.
          children: key === tab ? <Tab /> : null,
        }))}
      />
    </>
  )
}
