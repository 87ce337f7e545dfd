import { lazy, Suspense } from 'react'
import { Navigate, Route, Routes } from 'react-router-dom'
import { Shell } from './Shell'
import { LoginPage } from './pages/LoginPage'
import { Loading } from './ui/states'

// Code split by route: each screen is its own chunk, loaded when first opened.
const OnboardingPage = lazy(() => import('./pages/OnboardingPage'))
const SegmentsPage = lazy(() => import('./pages/SegmentsPage'))
const SegmentBuilderPage = lazy(() => import('./pages/SegmentBuilderPage'))
const SegmentPage = lazy(() => import('./pages/SegmentPage'))
const ExplorerPage = lazy(() => import('./pages/ExplorerPage'))
const AnalysesPage = lazy(() => import('./pages/AnalysesPage'))
const CustomersPage = lazy(() => import('./pages/CustomersPage'))
const CustomerPage = lazy(() => import('./pages/CustomerPage'))
const ActionsPage = lazy(() => import('./pages/ActionsPage'))
const SettingsPage = lazy(() => import('./pages/SettingsPage'))

export default function App() {
  return (
    <Suspense fallback={<Loading what="the screen" />}>
      <Routes>
        <Route path="/login" element={<LoginPage />} />
        <Route path="/w/:workspaceId" element={<Shell />}>
          <Route index element={<Navigate to="segments" replace />} />
          <Route path="onboarding/*" element={<OnboardingPage />} />
          <Route path="segments" element={<SegmentsPage />} />
          <Route path="segments/new" element={<SegmentBuilderPage />} />
          <Route path="segments/:segmentId/edit" element={<SegmentBuilderPage />} />
          <Route path="segments/:segmentId" element={<SegmentPage />} />
          <Route path="explorer" element={<ExplorerPage />} />
          <Route path="analyses/*" element={<AnalysesPage />} />
          <Route path="customers" element={<CustomersPage />} />
          <Route path="customers/:externalId" element={<CustomerPage />} />
          <Route path="actions/*" element={<ActionsPage />} />
          <Route path="settings/*" element={<SettingsPage />} />
        </Route>
        <Route path="*" element={<Shell />} />
      </Routes>
    </Suspense>
  )
}
