import { lazy, Suspense } from 'react'
import { Navigate, Route, Routes } from 'react-router-dom'
import { Spin } from 'antd'
import { Shell } from './Shell'
import { LoginPage } from './pages/LoginPage'

// Code split by route: each screen is its own chunk.
const SegmentsPage = lazy(() => import('./pages/SegmentsPage'))
const SegmentPage = lazy(() => import('./pages/SegmentPage'))

export default function App() {
  return (
    <Suspense fallback={<Spin style={{ margin: 48 }} />}>
      <Routes>
        <Route path="/login" element={<LoginPage />} />
        <Route path="/w/:workspaceId" element={<Shell />}>
          <Route index element={<Navigate to="segments" replace />} />
          <Route path="segments" element={<SegmentsPage />} />
          <Route path="segments/:segmentId" element={<SegmentPage />} />
        </Route>
        <Route path="*" element={<Shell />} />
      </Routes>
    </Suspense>
  )
}
