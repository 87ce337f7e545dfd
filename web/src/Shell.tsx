import { Alert, Layout, Menu, Select, Spin, Typography } from 'antd'
import { Navigate, Outlet, useLocation, useNavigate, useParams } from 'react-router-dom'
import { useMe } from './me'

const SECTIONS = [
  { key: 'onboarding', label: 'Get started' },
  { key: 'segments', label: 'Segments' },
  { key: 'explorer', label: 'Explorer' },
  { key: 'analyses', label: 'Analyses' },
  { key: 'customers', label: 'Customers' },
  { key: 'actions', label: 'Actions' },
  { key: 'settings', label: 'Settings' },
]

/** The frame around every screen: the workspace switcher and the menu. Switching
 * workspaces keeps the session (the workspace is in the path, not in the login). */
export function Shell() {
  const me = useMe()
  const { workspaceId } = useParams()
  const navigate = useNavigate()
  const location = useLocation()

  if (me.isPending) return <Spin style={{ margin: 48 }} />
  if (me.isError) return <Alert type="error" title="The server cannot be reached; try again." />
  if (me.data === null) return <Navigate to="/login" replace state={{ from: location.pathname }} />
  const workspaces = me.data.workspaces
  if (!workspaceId) {
    if (workspaces.length === 0)
      return <Alert type="info" title="You are not a member of any workspace yet." />
    return <Navigate to={`/w/${workspaces[0].id}/segments`} replace />
  }
  const section = location.pathname.split('/')[3] ?? 'segments'
  return (
    <Layout style={{ minHeight: '100%' }}>
      <Layout.Header style={{ display: 'flex', alignItems: 'center', gap: 16 }}>
        <Typography.Text strong style={{ color: '#fff' }}>
          Strata
        </Typography.Text>
        <Select
          aria-label="Workspace"
          style={{ minWidth: 200 }}
          value={Number(workspaceId)}
          options={workspaces.map((w) => ({ value: w.id, label: `${w.name} (${w.role})` }))}
          onChange={(id) => navigate(`/w/${id}/${section}`)}
        />
        <Menu
          theme="dark"
          mode="horizontal"
          selectedKeys={[section]}
          style={{ flex: 1 }}
          items={SECTIONS}
          onClick={({ key }) => navigate(`/w/${workspaceId}/${key}`)}
        />
      </Layout.Header>
      <Layout.Content className="content">
        <Outlet />
      </Layout.Content>
    </Layout>
  )
}
