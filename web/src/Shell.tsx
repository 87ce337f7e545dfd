import { useState } from 'react'
import { Alert, Button, Drawer, Grid, Layout, Menu, Select, Typography } from 'antd'
import { Navigate, Outlet, useLocation, useNavigate, useParams } from 'react-router-dom'
import { useMe } from './me'
import { Loading } from './ui/states'

const SECTIONS = [
  { key: 'onboarding', label: 'Get started' },
  { key: 'segments', label: 'Segments' },
  { key: 'explorer', label: 'Explorer' },
  { key: 'analyses', label: 'Analyses' },
  { key: 'customers', label: 'Customers' },
  { key: 'actions', label: 'Actions' },
  { key: 'settings', label: 'Settings' },
]

/** The frame around every screen: the workspace switcher and the menu (in a drawer at
 * phone width). Switching workspaces keeps the session and the section: the workspace
 * is in the address, not in the login. */
export function Shell() {
  const me = useMe()
  const { workspaceId } = useParams()
  const navigate = useNavigate()
  const location = useLocation()
  const wide = Grid.useBreakpoint().md ?? true
  const [drawer, setDrawer] = useState(false)

  if (me.isPending) return <Loading what="your account" />
  if (me.isError) return <Alert type="error" title="The server cannot be reached; try again." />
  if (me.data === null) return <Navigate to="/login" replace state={{ from: location.pathname }} />
  const workspaces = me.data.workspaces
  if (!workspaceId) {
    if (workspaces.length === 0)
      return <Alert type="info" title="You are not a member of any workspace yet." />
    return <Navigate to={`/w/${workspaces[0].id}/segments`} replace />
  }
  const section = location.pathname.split('/')[3] ?? 'segments'
  const go = (key: string) => {
    setDrawer(false)
    navigate(`/w/${workspaceId}/${key}`)
  }
  const switcher = (
    <Select
      aria-label="Workspace"
      style={{ minWidth: 200, maxWidth: '100%' }}
      value={Number(workspaceId)}
      options={workspaces.map((w) => ({ value: w.id, label: `${w.name} (${w.role})` }))}
      onChange={(id) => {
        setDrawer(false)
        navigate(`/w/${id}/${section}`)
      }}
    />
  )
  return (
    <Layout style={{ minHeight: '100%' }}>
      <Layout.Header style={{ display: 'flex', alignItems: 'center', gap: 16, paddingInline: 16 }}>
        <Typography.Text strong style={{ color: '#fff', fontSize: 18 }}>
          Strata
        </Typography.Text>
        {wide ? (
          <>
            {switcher}
            <Menu
              theme="dark"
              mode="horizontal"
              selectedKeys={[section]}
              style={{ flex: 1, minWidth: 0 }}
              items={SECTIONS}
              onClick={({ key }) => go(key)}
            />
          </>
        ) : (
          <>
            <Typography.Text style={{ color: '#ccc', flex: 1 }} ellipsis>
              {SECTIONS.find((s) => s.key === section)?.label}
            </Typography.Text>
            <Button aria-label="Menu" onClick={() => setDrawer(true)}>
              ☰
            </Button>
            <Drawer title="Strata" open={drawer} onClose={() => setDrawer(false)} size={300}>
              {switcher}
              <Menu
                mode="vertical"
                selectedKeys={[section]}
                items={SECTIONS}
                onClick={({ key }) => go(key)}
                style={{ borderInlineEnd: 0, marginTop: 16 }}
              />
            </Drawer>
          </>
        )}
      </Layout.Header>
      <Layout.Content className="content">
        <Outlet />
      </Layout.Content>
    </Layout>
  )
}
