import { Tabs, Typography } from 'antd'
import { Navigate, Route, Routes, useLocation, useNavigate } from 'react-router-dom'
import { WebhooksTab } from './actions/WebhooksTab'
import { WebhookPage } from './actions/WebhookPage'
import { AutomationsTab } from './actions/AutomationsTab'
import { AutomationPage } from './actions/AutomationPage'
import { ExportsTab } from './actions/ExportsTab'
import { CampaignsTab } from './actions/CampaignsTab'
import { CampaignPage } from './actions/CampaignPage'
import { useWorkspaceId } from '../ui/workspace'

const TABS = [
  { key: 'webhooks', label: 'Webhooks' },
  { key: 'automations', label: 'Automations' },
  { key: 'exports', label: 'Exports' },
  { key: 'campaigns', label: 'Campaigns' },
]

/** Acting on segments: webhooks with their delivery log, automations, export files and
 * campaigns with their lift. Each tab is its own address, so it can be bookmarked. */
export default function ActionsPage() {
  const workspaceId = useWorkspaceId()
  const navigate = useNavigate()
  const { pathname, search } = useLocation()
  const tab = pathname.split('/')[4] ?? 'webhooks'
  return (
    <>
      <Typography.Title level={3}>Actions</Typography.Title>
      <Tabs
        activeKey={tab}
        items={TABS}
        // The query (`?segment=`) goes along: the segment chosen to act on stays chosen.
        onChange={(key) => navigate(`/w/${workspaceId}/actions/${key}${search}`)}
      />
      <Routes>
        <Route index element={<Navigate to={{ pathname: 'webhooks', search }} replace />} />
        <Route path="webhooks" element={<WebhooksTab />} />
        <Route path="webhooks/:webhookId" element={<WebhookPage />} />
        <Route path="automations" element={<AutomationsTab />} />
        <Route path="automations/:automationId" element={<AutomationPage />} />
        <Route path="exports" element={<ExportsTab />} />
        <Route path="campaigns" element={<CampaignsTab />} />
        <Route path="campaigns/:campaignId" element={<CampaignPage />} />
        <Route path="*" element={<Navigate to="webhooks" replace />} />
      </Routes>
    </>
  )
}
