import { Space, Tabs, Typography } from 'antd'
import { Navigate, Route, Routes, useLocation, useNavigate, useParams } from 'react-router-dom'
import { CohortsTab } from './analyses/CohortsTab'
import { JourneysTab } from './analyses/JourneysTab'
import { OverlapTab } from './analyses/OverlapTab'
import { RfmTab } from './analyses/RfmTab'

const TABS = [
  { key: 'overlap', label: 'Overlap', element: <OverlapTab /> },
  { key: 'rfm', label: 'RFM', element: <RfmTab /> },
  { key: 'cohorts', label: 'Cohorts', element: <CohortsTab /> },
  { key: 'journeys', label: 'Journeys', element: <JourneysTab /> },
]

/** Analyses: segment overlap, the RFM grid and its migration, cohort retention and
 * journeys. Each tab has its own address (/analyses/<tab>), and every chart's cells open
 * the customers behind them. */
export default function AnalysesPage() {
  const navigate = useNavigate()
  const workspaceId = useParams().workspaceId
  const tab = useLocation().pathname.split('/analyses/')[1]?.split('/')[0] ?? ''
  return (
    <Space orientation="vertical" style={{ width: '100%' }}>
      <Typography.Title level={3} style={{ margin: 0 }}>
        Analyses
      </Typography.Title>
      <Tabs
        activeKey={tab}
        onChange={(key) => navigate(`/w/${workspaceId}/analyses/${key}`)}
        items={TABS.map(({ key, label }) => ({ key, label }))}
      />
      <Routes>
        <Route index element={<Navigate to="overlap" replace />} />
        {TABS.map(({ key, element }) => (
          <Route key={key} path={key} element={element} />
        ))}
        <Route path="*" element={<Navigate to="overlap" replace />} />
      </Routes>
    </Space>
  )
}
